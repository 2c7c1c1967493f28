"""The API's GET answered by attribute_bridge.api_read (no pydantic, no validating router)
answers exactly as the validating router's GET route does (attribute_bridge.attributes_api,
which the OpenAPI document describes): same status, body and headers, for ids that are or
are not UUIDs and for every failure the read can meet. The 200 path is covered against the
emulator by tests/integration and the schemathesis run of test_api_validation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from attribute_bridge import api_errors, api_read, attributes_api, wiring
from attribute_bridge.budget import Budget
from attribute_bridge.config import Settings
from attribute_bridge.errors import (
    Conflict,
    Forbidden,
    GenesysUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    TokenUnavailable,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localdev.sandbox import LambdaContext

CONVERSATION_ID = "6b1f2a9e-3c4d-4e5f-8a7b-9C0D1E2F3A4B"
PARTICIPANT_ID = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"


@dataclass
class FailingGenesys:
    """Stands in for GenesysClient: every read fails with `error`; reads are counted."""

    error: Exception
    reads: list[str] = field(default_factory=list)

    def get_conversation(self, conversation_id: str, media_type: str, budget: Budget) -> Any:
        self.reads.append(conversation_id)
        raise self.error


def get_event(conversation_id: str, participant_id: str) -> dict[str, Any]:
    resource = api_read.RESOURCE
    return {
        "resource": resource,
        "path": f"/conversations/{conversation_id}/participants/{participant_id}/attributes",
        "httpMethod": "GET",
        "headers": {"Accept": "application/json"},
        "multiValueHeaders": {"Accept": ["application/json"]},
        "queryStringParameters": None,
        "pathParameters": {"conversationId": conversation_id, "participantId": participant_id},
        "requestContext": {"resourcePath": resource, "httpMethod": "GET", "requestId": "r-1"},
        "body": None,
        "isBase64Encoded": False,
    }


def both_answers(event: dict[str, Any], error: Exception) -> tuple[dict[str, Any], ...]:
    answers = []
    context = LambdaContext("AttributesApiFunction", 10, 256)
    for answer in (
        lambda: api_read.handle(api_read.path_ids(event) or ("", ""), context),
        lambda: attributes_api.handle(event, context),
    ):
        genesys = FailingGenesys(error)
        with wiring.override(genesys=genesys, settings=Settings(), conversation_state=object()):
            result = answer()
        answers.append({**result, "body": json.loads(result["body"]), "reads": genesys.reads})
        api_errors.metrics.clear_metrics()  # the handler module's decorator flushes them
    return tuple(answers)


FAILURES = [
    NotFound("no such conversation", status=404),
    RateLimited("slow down", retry_after=2.2),
    Conflict("conflict", status=409),
    Forbidden("roles", status=403),
    InvalidRequest("bad", status=400),
    GenesysUnavailable("down", status=503),
    TokenUnavailable("no token"),
    RuntimeError("a bug"),
]


@pytest.mark.parametrize("error", FAILURES, ids=[type(e).__name__ for e in FAILURES])
def test_a_failed_read_is_answered_as_the_router_answers_it(error: Exception) -> None:
    plain, routed = both_answers(get_event(CONVERSATION_ID, PARTICIPANT_ID), error)
    assert plain == routed
    assert plain["statusCode"] >= 400 and plain["reads"] == [CONVERSATION_ID.lower()]


ids = st.one_of(
    st.uuids().map(str),
    st.uuids().map(lambda value: str(value).upper()),
    st.text(min_size=1, max_size=40).filter(lambda text: "/" not in text),
    st.sampled_from(["../../users/me", "x?y", "%2e%2e", "{participantId}", CONVERSATION_ID + "\n"]),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation_id=ids, participant_id=ids)
def test_path_ids_are_checked_as_the_router_checks_them(
    conversation_id: str, participant_id: str
) -> None:
    event = get_event(conversation_id, participant_id)
    plain, routed = both_answers(event, NotFound("no such conversation", status=404))
    assert plain == routed
    assert plain["statusCode"] in (400, 404)
