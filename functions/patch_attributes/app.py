"""PatchAttributes: ParticipantAttributesResolved (or UpdateRequested) -> the write rules
-> PATCH the participant's attributes on the media-aware endpoint -> an audit event,
ParticipantAttributesPatched (the keys written, never their values)."""

from __future__ import annotations

from typing import Any

from attribute_bridge import use_cases, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.events import (
    INCOMING_LIMITS,
    PATCHED,
    parse_attributes_detail,
    patched_detail,
)
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
        # Wide limits here: the write rules refuse a bad key by itself, the others still go.
        request = parse_attributes_detail(event, INCOMING_LIMITS)
        result = use_cases.patch_attributes(
            request,
            wiring.genesys(request.conversation_id),  # its pinned OAuth client
            wiring.conversation_state(),
            wiring.current_settings(),
            budget,
        )
        written = result.detail
        audited = written is not None and best_effort(
            "Publishing ParticipantAttributesPatched",
            lambda: wiring.publisher().publish(PATCHED, [patched_detail(written, result.refused)]),
            logger,
        )
        if written is not None and not audited:
            metrics.add_metric(name="AuditPublishFailed", unit="Count", value=1)
        return {
            "outcome": result.outcome,
            "reason": result.reason,
            "conversationId": request.conversation_id,
            "genesysClient": wiring.genesys_client_name(request.conversation_id),
            "participantId": request.participant_id,
            "writtenKeys": sorted(result.detail.attributes) if result.detail else [],
            "refused": result.refused,
            "warnings": list(result.warnings),
            "emitted": PATCHED if audited else None,
        }

    return handle(
        event, context, function="PatchAttributes", logger=logger, metrics=metrics, step=step
    )
