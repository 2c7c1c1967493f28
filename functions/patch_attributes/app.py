"""PatchAttributes: ParticipantAttributesResolved (or UpdateRequested) -> PATCH the
participant's attributes on the media-aware endpoint -> ParticipantAttributesPatched."""

from __future__ import annotations

from typing import Any

from attribute_bridge import use_cases, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.events import PATCHED, parse_attributes_detail
from attribute_bridge.handling import APP_EVENT_KEY, best_effort, handle, idempotent_on
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
        settings = wiring.current_settings()
        request = parse_attributes_detail(event, settings.limits)
        result = use_cases.patch_attributes(request, wiring.genesys(), settings, budget)
        audited = result.outcome == "patched" and best_effort(
            "Publishing ParticipantAttributesPatched",
            "AuditPublishFailed",
            lambda: wiring.publisher().publish(PATCHED, [request.to_dict()]),
            logger,
        )
        return {
            "outcome": result.outcome,
            "reason": result.reason,
            "conversationId": request.conversation_id,
            "participantId": request.participant_id,
            "emitted": PATCHED if audited else None,
        }

    return handle(
        event, context, function="PatchAttributes", logger=logger, metrics=metrics, step=step
    )
