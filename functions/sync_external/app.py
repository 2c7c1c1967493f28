"""SyncExternal: ParticipantAttributesFetched -> POST the allowed attributes to the
external system -> ParticipantAttributesResolved with only the keys that change."""

from __future__ import annotations

from typing import Any

from attribute_bridge import use_cases, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.events import INCOMING_LIMITS, RESOLVED, parse_attributes_detail
from attribute_bridge.handling import APP_EVENT_KEY, handle, idempotent_on
from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
@idempotent_on(APP_EVENT_KEY, expires_after_seconds=24 * 3600)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def step(budget: Budget) -> dict[str, Any]:
        fetched = parse_attributes_detail(event, INCOMING_LIMITS)
        result = use_cases.sync_external(
            fetched,
            wiring.external_system(),
            wiring.conversation_state(),
            wiring.current_settings(),
            budget,
        )
        if result.capped:
            metrics.add_metric(name="SyncCapReached", unit="Count", value=1)
            logger.warning("Sync cap reached: a loop escaped?", extra={"reason": result.reason})
        if result.detail is not None:
            wiring.publisher().publish(RESOLVED, [result.detail.to_dict()])
        return {
            "outcome": result.outcome,
            "reason": result.reason,
            "conversationId": fetched.conversation_id,
            "participantId": fetched.participant_id,
            "changedKeys": sorted(result.detail.attributes) if result.detail else [],
            "refused": result.refused,
            "emitted": RESOLVED if result.detail else None,
        }

    return handle(
        event, context, function="SyncExternal", logger=logger, metrics=metrics, step=step
    )
