"""FetchAttributes: a Genesys conversation event (or a sync request) -> the customer
participant's attributes, emitted as ParticipantAttributesFetched on the app's bus."""

from __future__ import annotations

from typing import Any

from attribute_bridge import use_cases, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.events import FETCHED, parse_conversation_event
from attribute_bridge.handling import CONVERSATION_EVENT_KEY, handle, idempotent_on
from attribute_bridge.observability import traced
from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
FIVE_DAYS = 5 * 24 * 3600  # longer than Genesys's 4 days of redelivery


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
@idempotent_on(CONVERSATION_EVENT_KEY, expires_after_seconds=FIVE_DAYS)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    def step(budget: Budget) -> dict[str, Any]:
        request = parse_conversation_event(event)
        result = use_cases.fetch_attributes(
            request,
            wiring.genesys(request.conversation_id),  # its pinned OAuth client
            wiring.conversation_state(),
            wiring.current_settings(),
            budget,
        )
        if result.detail is not None:
            wiring.publisher().publish(FETCHED, [result.detail.to_dict()])
        return {
            "outcome": result.outcome,
            "reason": result.reason,
            "conversationId": request.conversation_id,
            "genesysClient": wiring.genesys_client_name(request.conversation_id),
            "participantId": result.detail.participant_id if result.detail else None,
            "emitted": FETCHED if result.detail else None,
        }

    return handle(
        event, context, function="FetchAttributes", logger=logger, metrics=metrics, step=step
    )
