"""GET /conversations/{conversationId}/participants/{participantId}/attributes, answered
without pydantic or Powertools' validating resolver.

A cold AttributesApi container's first request pays every import it makes; for this read
(the data actions' and external systems' usual call) pydantic, the API's models and
Powertools' OpenAPI validation (~0.19 s of CPU on a cold GET, built layer:
benchmarks/cold_start.py) buy nothing: its only input is two path ids, checked with
`validation.is_uuid` (the rule the OpenAPI document shows as UUID_PATTERN), and its answer
is three string fields.
attribute_bridge.attributes_api declares the same route for the document and for events
that carry no API Gateway resource, and calls `read_attributes` too. Errors are answered
from the one table in attribute_bridge.api_errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from attribute_bridge import api_errors, domain, use_cases, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.errors import InvalidInput
from attribute_bridge.validation import is_uuid

RESOURCE = "/conversations/{conversationId}/participants/{participantId}/attributes"
ID_NAMES = ("conversationId", "participantId")
metrics = Metrics()  # Powertools shares one metric set: the handler module flushes it


def path_ids(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """The two ids of a GET API Gateway routed to this resource, else None (the router
    answers everything else: other methods and routes, events without a resource)."""
    parameters = event.get("pathParameters")
    if (
        api_errors.not_an_api_event(event) is not None
        or event.get("httpMethod") != "GET"
        or event.get("resource") != RESOURCE
        or not isinstance(parameters, Mapping)
    ):
        return None
    ids = tuple(parameters.get(name) for name in ID_NAMES)
    if not all(isinstance(value, str) and value for value in ids):
        return None  # an empty id matches no route there: the router's 404
    return str(ids[0]), str(ids[1])


def handle(ids: tuple[str, str], context: LambdaContext) -> dict[str, Any]:
    """The proxy response to the read: 200 with the readable attributes, else an error."""
    invalid = [
        f"{name} must be a UUID"
        for name, value in zip(ID_NAMES, ids, strict=True)
        if not is_uuid(value)
    ]
    try:
        if invalid:  # answered as the validating router answers a path id not a UUID
            raise InvalidInput("; ".join(invalid), invalid)
        return api_errors.proxy_response(
            200, read_attributes(ids[0], ids[1], Budget.from_context(context))
        )
    except Exception as error:  # every failure is answered as the router answers it
        return _error(api_errors.answer_for(error, "GET"))


def read_attributes(conversation_id: str, participant_id: str, budget: Budget) -> dict[str, Any]:
    """One Genesys read; the participant's attributes on ReadableAttributes, as
    ParticipantAttributes (camelCase) holds them."""
    conversation_id, participant_id = conversation_id.lower(), participant_id.lower()
    settings = wiring.current_settings()
    conversation = use_cases.read_and_remember(
        wiring.genesys(), wiring.conversation_state(), conversation_id, None, budget
    )
    participant = domain.pick_participant(conversation, participant_id)
    metrics.add_metric(name="ApiRead", unit=MetricUnit.Count, value=1)
    return {
        "conversationId": conversation_id,
        "participantId": participant.id,
        "attributes": settings.readable.select(participant.attributes),
    }


def _error(answer: api_errors.ErrorAnswer) -> dict[str, Any]:
    return api_errors.proxy_response(answer.status, answer.body(), answer.headers)
