"""AttributesApi end to end: the real handler (from template.yaml) behind API Gateway proxy
events built from events/api-*.json, the Genesys emulator over HTTP, moto for SSM and
EventBridge. Each test is what an external system or a Genesys data action would see."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from localdev.sandbox import Sandbox, sandbox

FUNCTION = "AttributesApiFunction"
EVENTS = Path(__file__).resolve().parents[2] / "events"
UNKNOWN_ID = "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d"
CUSTOMER_ATTRIBUTES = {"case_id": "CASE-1001", "crm_customer_tier": "silver"}
GENESYS_API_REQUESTS = ("GET /api/v2", "PATCH /api/v2")


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # names lowercased
    body: Any
    raw_body: str


@dataclass(frozen=True)
class LiveCall:
    conversation_id: str
    customer_id: str
    ivr_id: str


def api_event(
    name: str,
    conversation_id: str,
    participant_id: str | None = None,
    body: str | None = None,
    content_type: str | None = "application/json",
    method: str | None = None,
) -> dict[str, Any]:
    """events/api-{name}.json with these ids and body, as API Gateway would pass them."""
    event: dict[str, Any] = json.loads((EVENTS / f"api-{name}.json").read_text())
    parameters = {"conversationId": conversation_id}
    if participant_id is not None:
        parameters["participantId"] = participant_id
    path = event["resource"]
    for key, value in parameters.items():
        path = path.replace("{" + key + "}", value)
    event["path"] = path
    event["requestContext"]["path"] = f"/dev{path}"
    event["pathParameters"] = parameters
    if method is not None:
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    if body is not None or name != "get-attributes":
        event["body"] = body
    for headers in (event["headers"], event["multiValueHeaders"]):
        headers.pop("Content-Type", None)
    if content_type is not None:
        event["headers"]["Content-Type"] = content_type
        event["multiValueHeaders"]["Content-Type"] = [content_type]
    return event


def call(box: Sandbox, event: dict[str, Any]) -> Answer:
    result = box.invoke(FUNCTION, event)
    headers = {k.lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = str(values[-1])
    raw = result["body"]
    return Answer(result["statusCode"], headers, json.loads(raw) if raw else None, raw)


def patch_body(attributes: Any) -> str:
    return json.dumps({"attributes": attributes})


def genesys_api_requests(box: Sandbox) -> dict[str, int]:
    requests: Mapping[str, int] = box.emulator.counters()["requests"]
    return {k: n for k, n in requests.items() if k.startswith(GENESYS_API_REQUESTS)}


def assert_error_shape(answer: Answer, status: int) -> None:
    assert answer.status == status, answer.raw_body
    assert answer.headers["content-type"] == "application/json"
    assert set(answer.body) == {"message", "errors"}
    assert isinstance(answer.body["message"], str) and answer.body["message"]
    assert isinstance(answer.body["errors"], list) and answer.body["errors"]
    assert all(isinstance(line, str) and line for line in answer.body["errors"])


@pytest.fixture
def live_call(box: Sandbox) -> LiveCall:
    conversation = box.emulator.create_conversation(
        media_type="VOICE",
        participants=[
            {"purpose": "customer", "attributes": dict(CUSTOMER_ATTRIBUTES)},
            {"purpose": "ivr"},
        ],
        conversation_id="6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b",
    )
    customer, ivr = conversation["participants"]
    return LiveCall(conversation["id"], customer["id"], ivr["id"])


# ---------------------------------------------------------------------------- GET


def test_get_answers_the_participants_attributes_as_genesys_holds_them(
    box: Sandbox, live_call: LiveCall
) -> None:
    answer = call(
        box, api_event("get-attributes", live_call.conversation_id, live_call.customer_id)
    )

    assert answer.status == 200, answer.raw_body
    assert answer.headers["content-type"] == "application/json"
    assert answer.body == {
        "conversationId": live_call.conversation_id,
        "participantId": live_call.customer_id,
        "attributes": CUSTOMER_ATTRIBUTES,
    }
    # The media is unknown to the API: it reads with Genesys's generic endpoint.
    assert genesys_api_requests(box) == {"GET /api/v2/conversations/{id}": 1}


def test_get_reads_a_web_messaging_participant_and_accepts_upper_case_ids(box: Sandbox) -> None:
    conversation = box.emulator.create_conversation(
        media_type="MESSAGE",
        participants=[
            {"purpose": "customer", "attributes": {"crm_channel": "web", "dob": "1980-01-02"}},
            {"purpose": "acd"},
        ],
    )
    conversation_id, customer_id = conversation["id"], conversation["participants"][0]["id"]

    answer = call(box, api_event("get-attributes", conversation_id.upper(), customer_id.upper()))

    assert answer.status == 200, answer.raw_body
    assert answer.body["attributes"] == {"crm_channel": "web"}  # ReadableAttributes only
    assert answer.body["conversationId"] == conversation_id


def test_get_of_an_unknown_conversation_is_404(box: Sandbox, live_call: LiveCall) -> None:
    answer = call(box, api_event("get-attributes", UNKNOWN_ID, live_call.customer_id))

    assert_error_shape(answer, 404)
    assert "conversation" in answer.body["message"].lower()


def test_get_of_a_participant_not_in_the_conversation_is_404(
    box: Sandbox, live_call: LiveCall
) -> None:
    answer = call(box, api_event("get-attributes", live_call.conversation_id, UNKNOWN_ID))

    assert_error_shape(answer, 404)
    assert "participant" in answer.body["message"].lower()


# ---------------------------------------------------------------------------- PATCH


def test_patch_writes_now_and_genesys_keeps_the_keys_not_sent(
    box: Sandbox, live_call: LiveCall
) -> None:
    sent = {"crm_case_id": "CASE-2002", "crm_customer_tier": "gold"}

    answer = call(
        box,
        api_event(
            "patch-attributes",
            live_call.conversation_id,
            live_call.customer_id,
            body=patch_body(sent),
        ),
    )

    assert answer.status == 200, answer.raw_body
    assert answer.body == {
        "conversationId": live_call.conversation_id,
        "participantId": live_call.customer_id,
        "attributes": sent,
        "status": "accepted",
    }
    assert box.emulator.participant_attributes(
        live_call.conversation_id, live_call.customer_id
    ) == {"case_id": "CASE-1001", "crm_customer_tier": "gold", "crm_case_id": "CASE-2002"}
    # the participant's purpose needs one read (then remembered); the write is media-aware
    assert genesys_api_requests(box) == {
        "GET /api/v2/conversations/{id}": 1,
        "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes": 1,
    }


def test_patch_of_an_unknown_conversation_is_404(box: Sandbox, live_call: LiveCall) -> None:
    answer = call(
        box,
        api_event(
            "patch-attributes", UNKNOWN_ID, live_call.customer_id, body=patch_body({"crm_a": "b"})
        ),
    )

    assert_error_shape(answer, 404)


def test_patch_of_an_unknown_participant_is_404_and_writes_nothing(
    box: Sandbox, live_call: LiveCall
) -> None:
    answer = call(
        box,
        api_event(
            "patch-attributes",
            live_call.conversation_id,
            UNKNOWN_ID,
            body=patch_body({"crm_a": "b"}),
        ),
    )

    assert_error_shape(answer, 404)
    assert (
        box.emulator.participant_attributes(live_call.conversation_id, live_call.customer_id)
        == CUSTOMER_ATTRIBUTES
    )


BAD_BODIES = {
    "invalid JSON": ('{"attributes": {"a": "b"}', "JSON"),
    "number value": (patch_body({"score": 42}), "body.attributes.score"),
    "null value": (patch_body({"score": None}), "body.attributes.score"),
    "boolean value": (patch_body({"vip": True}), "body.attributes.vip"),
    "object value": (patch_body({"nested": {"a": "b"}}), "body.attributes.nested"),
    "too many keys": (patch_body({f"crm_{i}": "v" for i in range(51)}), "more than 50"),
    "value too long": (patch_body({"crm_note": "x" * 257}), "crm_note: value of 257"),
    "blank key": (patch_body({"  ": "v"}), "invalid key"),
    "key with a NUL": (patch_body({"crm_\u0000": "v"}), "invalid key"),
    "value with a NUL": (patch_body({"crm_a": "a\u0000"}), "NUL"),
    "extra field": (json.dumps({"attributes": {"a": "b"}, "mediaType": "VOICE"}), "mediaType"),
    "no attributes": (json.dumps({"attrs": {"a": "b"}}), "body.attributes"),
    "empty attributes": (patch_body({}), "body.attributes"),
    "attributes not an object": (patch_body(["a", "b"]), "body.attributes"),
    "body not an object": (json.dumps(["a"]), "JSON object"),
    "no body": (None, "body is required"),
}


@pytest.mark.parametrize(("body", "named"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_patch_with_a_bad_body_is_400_naming_the_problem_and_reaches_no_genesys(
    box: Sandbox, live_call: LiveCall, body: str | None, named: str
) -> None:
    event = api_event(
        "patch-attributes", live_call.conversation_id, live_call.customer_id, body=body
    )

    answer = call(box, event)

    assert_error_shape(answer, 400)
    assert any(named in line for line in answer.body["errors"]), answer.body
    assert genesys_api_requests(box) == {}
    assert (
        box.emulator.participant_attributes(live_call.conversation_id, live_call.customer_id)
        == CUSTOMER_ATTRIBUTES
    )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_patch_with_a_body_that_is_not_json_is_415(
    box: Sandbox, live_call: LiveCall, content_type: str
) -> None:
    event = api_event(
        "patch-attributes",
        live_call.conversation_id,
        live_call.customer_id,
        body="attributes=a",
        content_type=content_type,
    )

    answer = call(box, event)

    assert_error_shape(answer, 415)
    assert genesys_api_requests(box) == {}


def test_attribute_limits_come_from_the_functions_settings() -> None:
    with sandbox(env_overrides={FUNCTION: {"MAX_ATTRIBUTES": "2"}}) as small:
        conversation = small.emulator.create_conversation(participants=[{"purpose": "customer"}])
        customer_id = conversation["participants"][0]["id"]
        three = patch_body({"crm_a": "1", "crm_b": "2", "crm_c": "3"})

        answer = call(
            small, api_event("patch-attributes", conversation["id"], customer_id, body=three)
        )

    assert_error_shape(answer, 400)
    assert any("more than 2" in line for line in answer.body["errors"])


# ---------------------------------------------------------------------------- ids


BAD_IDS = ["../../users/me", "x?y", "not-a-uuid", "6b1f2a9e3c4d4e5f8a7b9c0d1e2f3a4b"]


@pytest.mark.parametrize("bad_id", BAD_IDS)
@pytest.mark.parametrize("which", ["conversationId", "participantId"])
@pytest.mark.parametrize("operation", ["get-attributes", "patch-attributes"])
def test_ids_that_are_not_uuids_are_400_before_any_genesys_request(
    box: Sandbox, live_call: LiveCall, bad_id: str, which: str, operation: str
) -> None:
    ids = {"conversationId": live_call.conversation_id, "participantId": live_call.customer_id}
    ids[which] = bad_id
    body = patch_body({"crm_a": "b"}) if operation == "patch-attributes" else None

    answer = call(box, api_event(operation, ids["conversationId"], ids["participantId"], body=body))

    assert_error_shape(answer, 400)
    assert answer.body["errors"] == [f"{which} must be a UUID"]
    assert box.emulator.counters()["requests"] == {}  # not even a token request


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_sync_for_a_conversation_id_that_is_not_a_uuid_is_400_and_emits_nothing(
    box: Sandbox, bad_id: str
) -> None:
    answer = call(box, api_event("post-sync", bad_id, body="{}"))

    assert_error_shape(answer, 400)
    assert box.emitted_events() == []


# ---------------------------------------------------------------------------- POST sync


def test_sync_puts_a_sync_request_on_the_app_bus_that_fetch_attributes_acts_on(
    box: Sandbox, live_call: LiveCall
) -> None:
    event = api_event("post-sync", live_call.conversation_id, body="{}")
    request_id = event["requestContext"]["requestId"]

    answer = call(box, event)

    assert answer.status == 202, answer.raw_body
    assert answer.body == {
        "conversationId": live_call.conversation_id,
        "status": "sync requested",
        "requestId": request_id,
    }
    [emitted] = box.emitted_events()
    assert emitted["detail-type"] == "ParticipantAttributesSyncRequested"
    assert emitted["source"] == "participant-attributes"
    assert emitted["detail"] == {
        "conversationId": live_call.conversation_id,
        "correlationId": request_id,
        "requestId": request_id,
    }
    # The template routes it to FetchAttributes, which reads the customer's attributes.
    assert box.template.route(emitted) == ["FetchAttributesFunction"]
    fetched = box.invoke("FetchAttributesFunction", emitted)
    assert fetched["outcome"] == "fetched"
    assert fetched["participantId"] == live_call.customer_id


@pytest.mark.parametrize("empty_body", [None, ""])
def test_sync_accepts_an_empty_body(
    box: Sandbox, live_call: LiveCall, empty_body: str | None
) -> None:
    event = api_event("post-sync", live_call.conversation_id, body=empty_body, content_type=None)

    answer = call(box, event)

    assert answer.status == 202, answer.raw_body
    assert len(box.emitted_events()) == 1


def test_sync_for_a_named_participant_carries_it(box: Sandbox, live_call: LiveCall) -> None:
    body = json.dumps({"participantId": live_call.ivr_id.upper()})

    answer = call(box, api_event("post-sync", live_call.conversation_id, body=body))

    assert answer.status == 202, answer.raw_body
    [emitted] = box.emitted_events()
    assert emitted["detail"]["participantId"] == live_call.ivr_id


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"participantId": "me"}),
        json.dumps({"participantId": 7}),
        json.dumps({"conversationId": UNKNOWN_ID}),
        "{not json",
    ],
)
def test_sync_with_a_bad_body_is_400_and_emits_nothing(
    box: Sandbox, live_call: LiveCall, body: str
) -> None:
    answer = call(box, api_event("post-sync", live_call.conversation_id, body=body))

    assert_error_shape(answer, 400)
    assert box.emitted_events() == []


# ---------------------------------------------------------------------------- Genesys failing


def test_rate_limit_longer_than_the_time_left_is_429_with_retry_after(
    box: Sandbox, live_call: LiveCall
) -> None:
    box.emulator.inject_fault(
        method="PATCH", path_pattern=r"/attributes$", status=429, retry_after=60, count=5
    )

    answer = call(
        box,
        api_event(
            "patch-attributes",
            live_call.conversation_id,
            live_call.customer_id,
            body=patch_body({"crm_a": "b"}),
        ),
    )

    assert_error_shape(answer, 429)
    assert answer.headers["retry-after"] == "60"
    # The function did not sleep 60 s in a 10 s invocation: it asked once and handed back.
    assert box.emulator.counters()["faults_served"] == 1
    assert (
        box.emulator.participant_attributes(live_call.conversation_id, live_call.customer_id)
        == CUSTOMER_ATTRIBUTES
    )


def test_a_conflict_that_persists_is_409(box: Sandbox, live_call: LiveCall) -> None:
    box.emulator.inject_fault(method="PATCH", path_pattern=r"/attributes$", status=409, count=10)

    answer = call(
        box,
        api_event(
            "patch-attributes",
            live_call.conversation_id,
            live_call.customer_id,
            body=patch_body({"crm_a": "b"}),
        ),
    )

    assert_error_shape(answer, 409)


@pytest.mark.parametrize("operation", ["get-attributes", "patch-attributes"])
def test_genesys_unavailable_is_502(box: Sandbox, live_call: LiveCall, operation: str) -> None:
    box.emulator.inject_fault(path_pattern=r"^/api/v2/conversations/", status=503, count=10)
    body = patch_body({"crm_a": "b"}) if operation == "patch-attributes" else None

    answer = call(
        box, api_event(operation, live_call.conversation_id, live_call.customer_id, body=body)
    )

    assert_error_shape(answer, 502)
    assert "unavailable" in answer.body["message"]


def test_genesys_refusing_our_credentials_is_502_without_leaking_them(
    box: Sandbox, live_call: LiveCall
) -> None:
    box.emulator.inject_fault(path_pattern=r"^/api/v2/conversations/", status=401, count=10)

    answer = call(
        box, api_event("get-attributes", live_call.conversation_id, live_call.customer_id)
    )

    assert_error_shape(answer, 502)
    assert "credentials" in answer.body["message"]
    for secret in secrets_in_play(box):
        assert secret not in answer.raw_body


# ---------------------------------------------------------------------------- routes, secrets


def test_an_unknown_route_is_404_in_the_error_shape(box: Sandbox, live_call: LiveCall) -> None:
    event = api_event(
        "get-attributes", live_call.conversation_id, live_call.customer_id, method="DELETE"
    )

    answer = call(box, event)

    assert_error_shape(answer, 404)
    assert genesys_api_requests(box) == {}


def test_no_response_body_carries_the_access_token_or_client_secret(
    box: Sandbox, live_call: LiveCall
) -> None:
    cid, pid = live_call.conversation_id, live_call.customer_id
    requests = [
        api_event("get-attributes", cid, pid),
        api_event("patch-attributes", cid, pid, body=patch_body({"crm_a": "b"})),
        api_event("post-sync", cid, body="{}"),
        api_event("get-attributes", UNKNOWN_ID, pid),
        api_event("patch-attributes", cid, pid, body="{"),
    ]
    bodies = [call(box, event).raw_body for event in requests]
    secrets = set(secrets_in_play(box))
    for status in (400, 401, 403, 500):
        box.emulator.inject_fault(path_pattern=r"^/api/v2/", status=status, count=20)
        bodies.append(call(box, api_event("get-attributes", cid, pid)).raw_body)
        secrets.update(secrets_in_play(box))
        box.emulator.reset()  # drops the fault and revokes the token: the next call mints one

    assert len(secrets) >= 3, "expected the client secret and the tokens minted"
    for body in bodies:
        for secret in secrets:
            assert secret not in body


def secrets_in_play(box: Sandbox) -> list[str]:
    """The client secret and the access token the function stored in SSM (if any)."""
    env = box.environment(FUNCTION)
    ssm = boto3.client("ssm", region_name="us-east-1")
    found = [box.emulator.config.client_secret]
    try:
        stored = ssm.get_parameter(Name=env["GENESYS_TOKEN_PARAMETER"], WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        return found
    found.append(json.loads(stored["Parameter"]["Value"])["access_token"])
    return found
