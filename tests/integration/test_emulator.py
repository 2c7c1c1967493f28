"""The Genesys Cloud emulator, driven through the real SDK (PureCloudPlatformClientV2) over
HTTP where the SDK can show the behaviour, and through raw `requests` where the SDK's own
urllib3 retries (429/503 with Retry-After) would hide it."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import PureCloudPlatformClientV2 as sdk
import pytest
import requests
from PureCloudPlatformClientV2.rest import ApiException

from localdev.emulator import EmulatorClient, EmulatorConfig, GenesysEmulator

CLIENT_ID = "local-client-id"
CLIENT_SECRET = "local-client-secret"

EmulatorFactory = Callable[..., GenesysEmulator]


@pytest.fixture
def make_emulator() -> Iterator[EmulatorFactory]:
    """Start emulators with custom settings; all are stopped after the test."""
    started: list[GenesysEmulator] = []

    def make(**settings: Any) -> GenesysEmulator:
        emulator = GenesysEmulator(EmulatorConfig(**settings)).start()
        started.append(emulator)
        return emulator

    yield make
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emu(make_emulator: EmulatorFactory) -> GenesysEmulator:
    return make_emulator()


def conversations_api(emulator: GenesysEmulator) -> Any:
    client = sdk.ApiClient(host=emulator.base_url)
    client.get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
    return sdk.ConversationsApi(client)


def attributes_body(attributes: dict[str, str]) -> Any:
    body = sdk.ParticipantAttributes()  # the SDK's models take no constructor arguments
    body.attributes = attributes
    return body


def raw_token(emulator: GenesysEmulator) -> str:
    response = requests.post(
        f"{emulator.base_url}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def raw(
    emulator: GenesysEmulator, method: str, path: str, token: str | None, **kwargs: Any
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kwargs.setdefault("timeout", 5)
    return requests.request(method, f"{emulator.base_url}{path}", headers=headers, **kwargs)


def voice_call(emulator: GenesysEmulator, **attributes: str) -> tuple[str, str]:
    """A VOICE conversation with customer, ivr and acd participants: (id, customer id)."""
    conversation = emulator.create_conversation(
        media_type="VOICE",
        participants=[
            {"purpose": "customer", "attributes": attributes},
            {"purpose": "ivr"},
            {"purpose": "acd"},
        ],
    )
    return conversation["id"], conversation["participants"][0]["id"]


def web_message(emulator: GenesysEmulator, **attributes: str) -> tuple[str, str]:
    conversation = emulator.create_conversation(
        media_type="MESSAGE",
        message_type="WEBMESSAGING",
        participants=[{"purpose": "customer", "attributes": attributes}, {"purpose": "agent"}],
    )
    return conversation["id"], conversation["participants"][0]["id"]


def error_code(error: ApiException) -> str:
    code: str = json.loads(error.body)["code"]
    return code


def assert_genesys_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["message"]
    assert body["contextId"]
    assert body["details"] == [] and body["errors"] == []
    return body


# ---- OAuth --------------------------------------------------------------------------------


def test_sdk_client_credentials_token_is_minted_and_counted(emu: GenesysEmulator) -> None:
    client = sdk.ApiClient(host=emu.base_url)
    client.get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
    assert client.access_token
    assert emu.counters()["tokens_minted"] == 1
    assert emu.counters()["requests"] == {"POST /oauth/token": 1}


def test_token_response_shape_follows_the_ttl(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(token_ttl_seconds=1800)
    response = requests.post(
        f"{emulator.base_url}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert len(body["access_token"]) >= 32


def test_wrong_client_credentials_are_refused_with_401(emu: GenesysEmulator) -> None:
    with pytest.raises(ApiException) as raised:
        sdk.ApiClient(host=emu.base_url).get_client_credentials_token(CLIENT_ID, "wrong")
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["error"] == "invalid_client"
    assert emu.counters()["tokens_minted"] == 0

    no_auth = requests.post(
        f"{emu.base_url}/oauth/token", data={"grant_type": "client_credentials"}, timeout=5
    )
    assert no_auth.status_code == 401
    assert set(no_auth.json()) >= {"error", "description", "error_description"}


def test_wrong_grant_type_is_a_400(emu: GenesysEmulator) -> None:
    response = requests.post(
        f"{emu.base_url}/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "password"},
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# ---- reading conversations ----------------------------------------------------------------


def test_get_conversation_deserializes_a_voice_call(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu, case_id="CASE-1001")
    conversation = conversations_api(emu).get_conversation(conversation_id)

    assert isinstance(conversation, sdk.Conversation)
    assert conversation.id == conversation_id
    assert conversation.start_time is not None and conversation.end_time is None
    assert [p.purpose for p in conversation.participants] == ["customer", "ivr", "acd"]
    customer = conversation.participants[0]
    assert isinstance(customer, sdk.Participant)
    assert customer.id == customer_id
    assert customer.attributes == {"case_id": "CASE-1001"}
    assert customer.ani.startswith("tel:")
    assert customer.calls[0].state == "connected"
    assert customer.messages is None


def test_get_conversation_deserializes_a_web_message(emu: GenesysEmulator) -> None:
    conversation_id, _ = web_message(emu, locale="en")
    conversation = conversations_api(emu).get_conversation(conversation_id)
    customer = conversation.participants[0]
    assert customer.attributes == {"locale": "en"}
    assert customer.messages[0].state == "connected"
    assert customer.messages[0].type == "webmessaging"
    assert customer.calls is None


def test_get_conversations_call_returns_call_media_participants(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu, case_id="CASE-1001")
    call = conversations_api(emu).get_conversations_call(conversation_id)

    assert isinstance(call, sdk.CallConversation)
    assert all(isinstance(p, sdk.CallMediaParticipant) for p in call.participants)
    customer = call.participants[0]
    assert (customer.id, customer.purpose, customer.state) == (customer_id, "customer", "connected")
    assert customer.attributes == {"case_id": "CASE-1001"}
    assert customer.end_time is None
    assert call.participants[1].attributes == {}


def test_get_conversations_message_returns_message_media_participants(
    emu: GenesysEmulator,
) -> None:
    conversation_id, customer_id = web_message(emu, case_id="CASE-2002")
    conversation = conversations_api(emu).get_conversations_message(conversation_id)

    assert isinstance(conversation, sdk.MessageConversation)
    assert all(isinstance(p, sdk.MessageMediaParticipant) for p in conversation.participants)
    customer = conversation.participants[0]
    assert (customer.id, customer.state, customer.type) == (
        customer_id,
        "connected",
        "webmessaging",
    )
    assert customer.attributes == {"case_id": "CASE-2002"}


def test_default_participants_are_a_customer_and_an_ivr(emu: GenesysEmulator) -> None:
    conversation = emu.create_conversation(media_type="VOICE")
    assert [p["purpose"] for p in conversation["participants"]] == ["customer", "ivr"]
    assert conversation["participants"][0]["attributes"] == {}


def test_fixed_ids_are_kept(emu: GenesysEmulator) -> None:
    conversation = emu.create_conversation(
        media_type="MESSAGE",
        conversation_id="c0000000-0000-4000-8000-000000000001",
        participants=[{"purpose": "customer", "id": "p0000000-0000-4000-8000-000000000001"}],
    )
    call = conversations_api(emu).get_conversations_message(conversation["id"])
    assert call.id == "c0000000-0000-4000-8000-000000000001"
    assert call.participants[0].id == "p0000000-0000-4000-8000-000000000001"
    with pytest.raises(ValueError, match="already exists"):
        emu.create_conversation(conversation_id="c0000000-0000-4000-8000-000000000001")


def test_create_conversation_validates_its_input(emu: GenesysEmulator) -> None:
    with pytest.raises(ValueError, match="media_type"):
        emu.create_conversation(media_type="FAX")
    with pytest.raises(ValueError, match=r"participants\[0\]\.attributes\.score"):
        emu.create_conversation(participants=[{"purpose": "customer", "attributes": {"score": 1}}])
    with pytest.raises(ValueError, match="unknown fields"):
        emu.create_conversation(participants=[{"purpose": "customer", "atributes": {}}])


@pytest.mark.parametrize(
    ("media_type", "path"),
    [
        ("MESSAGE", "/api/v2/conversations/calls/{id}"),
        ("VOICE", "/api/v2/conversations/messages/{id}"),
    ],
)
def test_media_endpoint_for_another_media_is_404(
    emu: GenesysEmulator, media_type: str, path: str
) -> None:
    conversation = emu.create_conversation(media_type=media_type)
    response = raw(emu, "GET", path.format(id=conversation["id"]), raw_token(emu))
    assert_genesys_error(response, 404, "not.found")
    # ... while the generic endpoint serves every media.
    generic = raw(emu, "GET", f"/api/v2/conversations/{conversation['id']}", raw_token(emu))
    assert generic.status_code == 200


def test_unknown_conversation_is_404_through_the_sdk(emu: GenesysEmulator) -> None:
    api = conversations_api(emu)
    for read in (api.get_conversation, api.get_conversations_call, api.get_conversations_message):
        with pytest.raises(ApiException) as raised:
            read("00000000-0000-4000-8000-000000000000")
        assert raised.value.status == 404
        assert error_code(raised.value) == "not.found"


# ---- writing attributes -------------------------------------------------------------------


def test_patch_call_attributes_merges_and_returns_the_merged_map(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu, case_id="CASE-1001", lang="en")
    api = conversations_api(emu)

    answer = api.patch_conversations_call_participant_attributes(
        conversation_id, customer_id, attributes_body({"case_status": "open", "lang": "fr"})
    )
    assert isinstance(answer, sdk.ParticipantAttributes)
    expected = {"case_id": "CASE-1001", "lang": "fr", "case_status": "open"}
    assert answer.attributes == expected
    assert emu.participant_attributes(conversation_id, customer_id) == expected
    assert api.get_conversations_call(conversation_id).participants[0].attributes == expected


def test_patch_message_attributes(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = web_message(emu, case_id="CASE-2002")
    answer = conversations_api(emu).patch_conversations_message_participant_attributes(
        conversation_id, customer_id, body=attributes_body({"case_status": "pending_customer"})
    )
    assert answer.attributes == {"case_id": "CASE-2002", "case_status": "pending_customer"}
    assert emu.participant_attributes(conversation_id, customer_id)["case_status"] == (
        "pending_customer"
    )


def test_patch_generic_attributes_works_for_any_media(emu: GenesysEmulator) -> None:
    api = conversations_api(emu)
    for conversation_id, customer_id in (voice_call(emu, a="1"), web_message(emu, a="1")):
        answer = api.patch_conversation_participant_attributes(
            conversation_id, customer_id, attributes_body({"b": "2"})
        )
        assert answer is None  # the SDK declares no response body for this one
        assert emu.participant_attributes(conversation_id, customer_id) == {"a": "1", "b": "2"}


def test_patch_answers_202_with_rate_limit_headers(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu)
    response = raw(
        emu,
        "PATCH",
        f"/api/v2/conversations/calls/{conversation_id}/participants/{customer_id}/attributes",
        raw_token(emu),
        json={"attributes": {"k": "v"}},
    )
    assert response.status_code == 202
    assert response.json() == {"attributes": {"k": "v"}}
    assert response.headers["inin-ratelimit-count"] == "1"
    assert response.headers["inin-ratelimit-allowed"] == "300"
    assert 1 <= int(response.headers["inin-ratelimit-reset"]) <= 60


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"attributes": {"ok": "yes", "score": 42}}, "attributes.score"),
        ({"attributes": {"gone": None}}, "attributes.gone"),
        ({"attributes": {"nested": {"a": "b"}}}, "attributes.nested"),
        ({"attributes": ["a"]}, "attributes"),
        ({"attrs": {"a": "b"}}, "attributes"),
        ([{"attributes": {}}], "attributes"),
    ],
)
def test_patch_with_an_invalid_body_is_400_naming_the_problem(
    emu: GenesysEmulator, body: Any, named: str
) -> None:
    conversation_id, customer_id = voice_call(emu, keep="me")
    path = f"/api/v2/conversations/{conversation_id}/participants/{customer_id}/attributes"
    response = raw(emu, "PATCH", path, raw_token(emu), json=body)
    error = assert_genesys_error(response, 400, "bad.request")
    assert named in error["message"]
    assert emu.participant_attributes(conversation_id, customer_id) == {"keep": "me"}


def test_patch_with_malformed_json_is_400(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu)
    path = f"/api/v2/conversations/{conversation_id}/participants/{customer_id}/attributes"
    response = raw(emu, "PATCH", path, raw_token(emu), data=b"{not json")
    assert_genesys_error(response, 400, "bad.request")


def test_patch_404s(emu: GenesysEmulator) -> None:
    call_id, call_customer = voice_call(emu)
    message_id, message_customer = web_message(emu)
    api = conversations_api(emu)
    body = attributes_body({"k": "v"})
    attempts: list[Callable[[], Any]] = [
        # unknown conversation
        lambda: api.patch_conversations_call_participant_attributes("nope", call_customer, body),
        lambda: api.patch_conversation_participant_attributes("nope", call_customer, body),
        # unknown participant
        lambda: api.patch_conversations_call_participant_attributes(call_id, "nope", body),
        lambda: api.patch_conversation_participant_attributes(message_id, "nope", body),
        # media mismatch
        lambda: api.patch_conversations_call_participant_attributes(
            message_id, message_customer, body
        ),
        lambda: api.patch_conversations_message_participant_attributes(
            call_id, call_customer, body=body
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ApiException) as raised:
            attempt()
        assert raised.value.status == 404
        assert error_code(raised.value) == "not.found"
    assert emu.participant_attributes(call_id, call_customer) == {}
    assert emu.participant_attributes(message_id, message_customer) == {}


def test_body_over_the_size_limit_is_413(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(max_request_bytes=2000)
    conversation_id, customer_id = voice_call(emulator)
    path = f"/api/v2/conversations/{conversation_id}/participants/{customer_id}/attributes"
    token = raw_token(emulator)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    url = emulator.base_url + path
    too_big = session.patch(
        url, json={"attributes": {"notes": "x" * 3000}}, headers=headers, timeout=5
    )
    assert_genesys_error(too_big, 413, "request.entity.too.large")
    # The oversized body was drained: the same connection serves the next request.
    fits = session.patch(url, json={"attributes": {"notes": "x" * 100}}, headers=headers, timeout=5)
    assert fits.status_code == 202
    assert emulator.participant_attributes(conversation_id, customer_id) == {"notes": "x" * 100}


# ---- ended conversations ------------------------------------------------------------------


def test_ended_conversation_shows_end_times_and_accepts_writes_by_default(
    emu: GenesysEmulator,
) -> None:
    conversation_id, customer_id = voice_call(emu)
    emu.end_conversation(conversation_id)
    api = conversations_api(emu)

    call = api.get_conversations_call(conversation_id)
    assert call.participants[0].state == "terminated"
    assert call.participants[0].end_time is not None
    generic = api.get_conversation(conversation_id)
    assert generic.end_time is not None
    assert generic.participants[0].calls[0].state == "terminated"

    answer = api.patch_conversations_call_participant_attributes(
        conversation_id, customer_id, attributes_body({"late": "write"})
    )
    assert answer.attributes == {"late": "write"}
    assert emu.participant_attributes(conversation_id, customer_id) == {"late": "write"}


def test_ended_message_conversation_is_disconnected(emu: GenesysEmulator) -> None:
    conversation_id, _ = web_message(emu)
    emu.end_conversation(conversation_id)
    conversation = conversations_api(emu).get_conversations_message(conversation_id)
    assert conversation.participants[0].state == "disconnected"
    assert conversation.participants[0].end_time is not None


def test_ended_conversation_can_answer_404_instead(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(ended_conversation_writes="not_found")
    conversation_id, customer_id = web_message(emulator, a="1")
    api = conversations_api(emulator)
    api.patch_conversations_message_participant_attributes(
        conversation_id, customer_id, body=attributes_body({"b": "2"})
    )
    emulator.end_conversation(conversation_id)
    with pytest.raises(ApiException) as raised:
        api.patch_conversations_message_participant_attributes(
            conversation_id, customer_id, body=attributes_body({"c": "3"})
        )
    assert raised.value.status == 404
    assert emulator.participant_attributes(conversation_id, customer_id) == {"a": "1", "b": "2"}


# ---- bearer tokens ------------------------------------------------------------------------


def test_missing_or_unknown_token_is_401(emu: GenesysEmulator) -> None:
    conversation_id, _ = voice_call(emu)
    path = f"/api/v2/conversations/{conversation_id}"
    assert_genesys_error(raw(emu, "GET", path, None), 401, "bad.credentials")
    assert_genesys_error(raw(emu, "GET", path, "made-up-token"), 401, "bad.credentials")
    basic = requests.get(
        emu.base_url + path, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5
    )  # Basic is for /oauth/token only
    assert_genesys_error(basic, 401, "bad.credentials")


def test_expired_token_is_401(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(token_ttl_seconds=0.3)
    conversation_id, _ = voice_call(emulator)
    api = conversations_api(emulator)
    assert api.get_conversations_call(conversation_id).id == conversation_id
    time.sleep(0.4)
    with pytest.raises(ApiException) as raised:
        api.get_conversations_call(conversation_id)
    assert raised.value.status == 401
    assert error_code(raised.value) == "bad.credentials"
    assert "expired" in json.loads(raised.value.body)["message"]


def test_revoked_tokens_are_401_and_new_ones_work(emu: GenesysEmulator) -> None:
    conversation_id, _ = voice_call(emu)
    api = conversations_api(emu)
    api.get_conversation(conversation_id)
    assert emu.revoke_tokens() == 1
    with pytest.raises(ApiException) as raised:
        api.get_conversation(conversation_id)
    assert raised.value.status == 401
    assert error_code(raised.value) == "bad.credentials"
    assert conversations_api(emu).get_conversation(conversation_id).id == conversation_id
    assert emu.counters()["tokens_minted"] == 2


# ---- rate limit ---------------------------------------------------------------------------


def test_rate_limit_per_token_answers_429_with_retry_after(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(rate_limit=3, rate_window_seconds=30)
    conversation_id, _ = voice_call(emulator)
    path = f"/api/v2/conversations/calls/{conversation_id}"
    token = raw_token(emulator)

    counts = []
    for _ in range(3):
        response = raw(emulator, "GET", path, token)
        assert response.status_code == 200
        assert response.headers["inin-ratelimit-allowed"] == "3"
        counts.append(response.headers["inin-ratelimit-count"])
    assert counts == ["1", "2", "3"]

    limited = raw(emulator, "GET", path, token)
    assert_genesys_error(limited, 429, "too.many.requests.retry.after")
    assert 1 <= int(limited.headers["Retry-After"]) <= 30
    assert emulator.counters()["rate_limited"] == 1

    # Another token has a window of its own.
    assert raw(emulator, "GET", path, raw_token(emulator)).status_code == 200


def test_rate_window_frees_after_its_length(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(rate_limit=1, rate_window_seconds=0.3)
    conversation_id, _ = voice_call(emulator)
    path = f"/api/v2/conversations/{conversation_id}"
    token = raw_token(emulator)
    assert raw(emulator, "GET", path, token).status_code == 200
    limited = raw(emulator, "GET", path, token)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"  # never below one second
    time.sleep(0.35)
    assert raw(emulator, "GET", path, token).status_code == 200


CALL_PATCH_KEY = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"


def rate_headers(response: requests.Response) -> tuple[int, int, int]:
    """(count, allowed, reset) of an answer's inin-ratelimit-* headers."""
    return (
        int(response.headers["inin-ratelimit-count"]),
        int(response.headers["inin-ratelimit-allowed"]),
        int(response.headers["inin-ratelimit-reset"]),
    )


def test_an_endpoint_with_its_own_limit_has_its_own_window_and_truthful_headers(
    make_emulator: EmulatorFactory,
) -> None:
    emulator = make_emulator(
        rate_limit=3, rate_window_seconds=30, endpoint_rate_limits={CALL_PATCH_KEY: 2}
    )
    conversation_id, customer_id = voice_call(emulator)
    get_path = f"/api/v2/conversations/calls/{conversation_id}"
    patch_path = f"{get_path}/participants/{customer_id}/attributes"
    token = raw_token(emulator)

    def patch() -> requests.Response:
        return raw(emulator, "PATCH", patch_path, token, json={"attributes": {"k": "v"}})

    answers = [patch(), patch()]
    assert [a.status_code for a in answers] == [202, 202]
    assert [rate_headers(a)[:2] for a in answers] == [(1, 2), (2, 2)]
    assert all(1 <= rate_headers(a)[2] <= 30 for a in answers)
    limited = patch()
    assert_genesys_error(limited, 429, "too.many.requests.retry.after")
    count, allowed, reset = rate_headers(limited)
    assert (count, allowed) == (2, 2)  # the PATCH bucket answered, and it is full
    assert limited.headers["Retry-After"] == str(reset) and 1 <= reset <= 30

    # The GET has the token's window (3), untouched by the PATCHes: 3 answers, then 429.
    gets = [raw(emulator, "GET", get_path, token) for _ in range(4)]
    assert [g.status_code for g in gets] == [200, 200, 200, 429]
    assert [rate_headers(g)[:2] for g in gets] == [(1, 3), (2, 3), (3, 3), (3, 3)]
    assert emulator.counters()["rate_limited"] == 2
    assert emulator.counters()["requests"][CALL_PATCH_KEY] == 3  # the 429 is counted too


def test_an_endpoint_window_frees_after_its_length(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(rate_window_seconds=0.3, endpoint_rate_limits={CALL_PATCH_KEY: 1})
    conversation_id, customer_id = voice_call(emulator)
    path = f"/api/v2/conversations/calls/{conversation_id}/participants/{customer_id}/attributes"
    token = raw_token(emulator)
    body = {"attributes": {"k": "v"}}
    assert raw(emulator, "PATCH", path, token, json=body).status_code == 202
    assert raw(emulator, "PATCH", path, token, json=body).status_code == 429
    time.sleep(0.35)
    answer = raw(emulator, "PATCH", path, token, json=body)
    assert answer.status_code == 202
    assert rate_headers(answer)[:2] == (1, 1)  # a new window


def test_endpoint_limits_are_set_and_checked_through_the_control_api(
    emu: GenesysEmulator,
) -> None:
    client = EmulatorClient(emu.base_url)
    config = client.configure(endpoint_rate_limits={CALL_PATCH_KEY: 180})
    assert config["endpoint_rate_limits"] == {CALL_PATCH_KEY: 180}
    assert emu.config.endpoint_rate_limits == {CALL_PATCH_KEY: 180}

    conversation_id, customer_id = voice_call(emu)
    path = f"/api/v2/conversations/calls/{conversation_id}/participants/{customer_id}/attributes"
    answer = raw(emu, "PATCH", path, raw_token(emu), json={"attributes": {"k": "v"}})
    assert rate_headers(answer)[:2] == (1, 180)

    base = f"{emu.base_url}/_emulator/config"
    for bad, named in (
        ({"GET /api/v2/nothing/{id}": 5}, "unknown route key 'GET /api/v2/nothing/{id}'"),
        ({"POST /oauth/token": 5}, "unknown route key 'POST /oauth/token'"),  # not limited
        ({CALL_PATCH_KEY: 0}, "must be >= 1, got 0"),
        ({CALL_PATCH_KEY: "180"}, "must be a whole number, got str '180'"),
        ({CALL_PATCH_KEY: True}, "must be a whole number"),
        ([CALL_PATCH_KEY], "endpoint_rate_limits must be an object, got list"),
    ):
        refused = requests.post(base, json={"endpoint_rate_limits": bad}, timeout=5)
        assert refused.status_code == 400, bad
        assert named in refused.json()["error"]
    assert emu.config.endpoint_rate_limits == {CALL_PATCH_KEY: 180}  # nothing changed
    with pytest.raises(ValueError, match="must be >= 1"):
        EmulatorConfig(endpoint_rate_limits={CALL_PATCH_KEY: 0})


# ---- fault injection ----------------------------------------------------------------------


def test_injected_409_hits_the_next_n_matching_requests_only(emu: GenesysEmulator) -> None:
    conversation_id, customer_id = voice_call(emu)
    api = conversations_api(emu)
    emu.inject_fault(
        method="PATCH", path_pattern=r"/participants/.*/attributes$", status=409, count=2
    )

    assert api.get_conversations_call(conversation_id).id == conversation_id  # GET not matched
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            api.patch_conversations_call_participant_attributes(
                conversation_id, customer_id, attributes_body({"k": "v"})
            )
        assert raised.value.status == 409
        assert error_code(raised.value) == "conflict"
    assert emu.participant_attributes(conversation_id, customer_id) == {}

    api.patch_conversations_call_participant_attributes(
        conversation_id, customer_id, attributes_body({"k": "v"})
    )
    assert emu.participant_attributes(conversation_id, customer_id) == {"k": "v"}
    assert emu.counters()["faults_served"] == 2


@pytest.mark.parametrize(
    ("status", "code", "retry_after"),
    [(503, "service.unavailable", 2), (429, "too.many.requests.retry.after", 7), (500, None, None)],
)
def test_injected_status_with_retry_after(
    emu: GenesysEmulator, status: int, code: str | None, retry_after: int | None
) -> None:
    conversation_id, _ = voice_call(emu)
    emu.inject_fault(method="GET", path_pattern="/calls/", status=status, retry_after=retry_after)
    path = f"/api/v2/conversations/calls/{conversation_id}"
    token = raw_token(emu)
    faulted = raw(emu, "GET", path, token)
    assert_genesys_error(faulted, status, code or "internal.server.error")
    assert faulted.headers.get("Retry-After") == (None if retry_after is None else str(retry_after))
    assert raw(emu, "GET", path, token).status_code == 200


def test_faults_apply_before_auth_and_can_carry_a_custom_body(emu: GenesysEmulator) -> None:
    emu.inject_fault(path_pattern="^/api/v2/", status=502, body={"gateway": "down"})
    response = raw(emu, "GET", "/api/v2/conversations/anything", token=None)
    assert response.status_code == 502
    assert response.json() == {"gateway": "down"}


def test_token_endpoint_can_be_down(emu: GenesysEmulator) -> None:
    emu.inject_fault(method="POST", path_pattern="^/oauth/token$", status=503)
    with pytest.raises(ApiException) as raised:
        sdk.ApiClient(host=emu.base_url).get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
    assert raised.value.status == 503
    assert emu.counters()["tokens_minted"] == 0
    conversations_api(emu)  # the fault was used up: this token request succeeds
    assert emu.counters()["tokens_minted"] == 1


def test_delay_fault_hangs_then_answers_normally(emu: GenesysEmulator) -> None:
    conversation_id, _ = voice_call(emu)
    api = conversations_api(emu)
    emu.inject_fault(method="GET", path_pattern=conversation_id, status=None, delay_seconds=0.3)
    started = time.monotonic()
    assert api.get_conversation(conversation_id).id == conversation_id
    assert time.monotonic() - started >= 0.3
    emu.inject_fault(method="GET", path_pattern=conversation_id, status=None, delay_seconds=1)
    with pytest.raises(requests.Timeout):
        raw(emu, "GET", f"/api/v2/conversations/{conversation_id}", raw_token(emu), timeout=0.2)


def test_delay_fault_with_a_status(emu: GenesysEmulator) -> None:
    emu.inject_fault(method="GET", status=500, delay_seconds=0.2)
    started = time.monotonic()
    response = raw(emu, "GET", "/api/v2/conversations/x", raw_token(emu))
    assert response.status_code == 500
    assert time.monotonic() - started >= 0.2


def test_invalid_faults_are_refused(emu: GenesysEmulator) -> None:
    with pytest.raises(ValueError, match="needs a status"):
        emu.inject_fault(status=None)
    with pytest.raises(ValueError, match="regular expression"):
        emu.inject_fault(path_pattern="(")
    with pytest.raises(ValueError, match="count"):
        emu.inject_fault(count=0)


# ---- counters, reset, control over HTTP ---------------------------------------------------


def test_counters_are_keyed_by_route_template(emu: GenesysEmulator) -> None:
    call_id, call_customer = voice_call(emu)
    message_id, message_customer = web_message(emu)
    api = conversations_api(emu)
    api.get_conversations_call(call_id)
    api.get_conversations_call(call_id)
    api.get_conversations_message(message_id)
    api.get_conversation(message_id)
    api.patch_conversations_call_participant_attributes(
        call_id, call_customer, attributes_body({"a": "b"})
    )
    api.patch_conversations_message_participant_attributes(
        message_id, message_customer, body=attributes_body({"a": "b"})
    )
    api.patch_conversation_participant_attributes(
        call_id, call_customer, attributes_body({"a": "b"})
    )
    EmulatorClient(emu.base_url).counters()  # control requests are not counted

    assert emu.counters() == {
        "requests": {
            "POST /oauth/token": 1,
            "GET /api/v2/conversations/calls/{id}": 2,
            "GET /api/v2/conversations/messages/{id}": 1,
            "GET /api/v2/conversations/{id}": 1,
            "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes": 1,
            "PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes": 1,
            "PATCH /api/v2/conversations/{id}/participants/{pid}/attributes": 1,
        },
        "tokens_minted": 1,
        "tokens_minted_by_client": {CLIENT_ID: 1},
        "requests_by_client": {CLIENT_ID: 7},  # the API requests, made with its token
        "rate_limited": 0,
        "faults_served": 0,
        "attribute_writes": 3,
    }


def test_control_endpoints_are_not_rate_limited(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(rate_limit=1)
    client = EmulatorClient(emulator.base_url)
    for _ in range(5):
        client.counters()
    assert client.counters()["rate_limited"] == 0


def test_reset_forgets_everything_but_settings(make_emulator: EmulatorFactory) -> None:
    emulator = make_emulator(rate_limit=7)
    conversation_id, _ = voice_call(emulator)
    api = conversations_api(emulator)
    emulator.inject_fault(status=500, count=5)
    emulator.reset()

    assert emulator.counters() == {
        "requests": {},
        "tokens_minted": 0,
        "tokens_minted_by_client": {},
        "requests_by_client": {},
        "rate_limited": 0,
        "faults_served": 0,
        "attribute_writes": 0,
    }
    with pytest.raises(ApiException) as raised:  # tokens are forgotten; no fault left
        api.get_conversation(conversation_id)
    assert raised.value.status == 401
    with pytest.raises(ApiException) as raised:
        conversations_api(emulator).get_conversation(conversation_id)
    assert raised.value.status == 404
    assert emulator.config.rate_limit == 7


def test_emulator_client_drives_everything_over_http(emu: GenesysEmulator) -> None:
    client = EmulatorClient(emu.base_url)
    created = client.create_conversation(
        media_type="MESSAGE",
        participants=[{"purpose": "customer", "attributes": {"case_id": "CASE-1"}}],
    )
    conversation_id = created["id"]
    customer_id = created["participants"][0]["id"]
    assert created["mediaType"] == "MESSAGE" and created["messageType"] == "WEBMESSAGING"
    assert client.participant_attributes(conversation_id, customer_id) == {"case_id": "CASE-1"}

    api = conversations_api(emu)
    api.patch_conversations_message_participant_attributes(
        conversation_id, customer_id, body=attributes_body({"x": "y"})
    )
    assert client.participant_attributes(conversation_id, customer_id) == {
        "case_id": "CASE-1",
        "x": "y",
    }

    fault = client.inject_fault(method="GET", path_pattern="/messages/", status=409, count=1)
    assert fault["remaining"] == 1
    with pytest.raises(ApiException) as raised:
        api.get_conversations_message(conversation_id)
    assert raised.value.status == 409

    assert client.end_conversation(conversation_id)["endTime"] is not None
    assert api.get_conversations_message(conversation_id).participants[0].state == "disconnected"

    assert client.revoke_tokens() == 1
    with pytest.raises(ApiException):
        api.get_conversations_message(conversation_id)

    config = client.configure(ended_conversation_writes="not_found")
    assert config["ended_conversation_writes"] == "not_found"
    assert emu.config.ended_conversation_writes == "not_found"

    assert client.counters()["tokens_minted"] == 1
    client.reset()
    assert client.counters()["requests"] == {}
    with pytest.raises(requests.HTTPError, match="404"):
        client.participant_attributes(conversation_id, customer_id)


def test_control_endpoints_refuse_bad_input(emu: GenesysEmulator) -> None:
    base = f"{emu.base_url}/_emulator"
    typo = requests.post(f"{base}/conversations", json={"mediatype": "VOICE"}, timeout=5)
    assert typo.status_code == 400
    assert "mediatype" in typo.json()["error"]
    bad_media = requests.post(f"{base}/conversations", json={"media_type": "FAX"}, timeout=5)
    assert bad_media.status_code == 400
    assert requests.post(f"{base}/conversations/nope/end", timeout=5).status_code == 404
    assert requests.post(f"{base}/faults", json={"count": 0}, timeout=5).status_code == 400
    assert requests.post(f"{base}/config", json={"port": 1}, timeout=5).status_code == 400
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404


# ---- HTTP plumbing ------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(emu: GenesysEmulator) -> None:
    conversation_id, _ = voice_call(emu)
    token = raw_token(emu)
    host, port = emu.base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    try:
        for _ in range(3):
            connection.request(
                "GET",
                f"/api/v2/conversations/{conversation_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert response.version == 11
            assert int(response.headers["Content-Length"]) == len(body)
            assert response.headers.get("Connection") != "close"
            assert connection.sock is not None  # still the same open socket
    finally:
        connection.close()


def test_unknown_api_route_is_404_after_auth(emu: GenesysEmulator) -> None:
    token = raw_token(emu)
    assert raw(emu, "GET", "/api/v2/users/me", None).status_code == 401
    assert_genesys_error(raw(emu, "GET", "/api/v2/users/me", token), 404, "not.found")


def test_credentials_in_basic_header_must_match_exactly(emu: GenesysEmulator) -> None:
    header = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}x".encode()).decode()
    response = requests.post(
        f"{emu.base_url}/oauth/token",
        headers={"Authorization": header},
        data={"grant_type": "client_credentials"},
        timeout=5,
    )
    assert response.status_code == 401


def test_python_m_localdev_emulator_serves_until_sigterm(
    localdev_server: Callable[[str], AbstractContextManager[str]],
) -> None:
    with localdev_server("emulator") as base_url:
        client = EmulatorClient(base_url)
        created = client.create_conversation()
        assert client.participant_attributes(created["id"], created["participants"][0]["id"]) == {}


def test_stopping_ends_pooled_keep_alive_connections(emu: GenesysEmulator) -> None:
    session = requests.Session()
    counters_url = f"{emu.base_url}/_emulator/counters"
    assert session.get(counters_url, timeout=5).status_code == 200
    emu.stop()
    with pytest.raises(requests.ConnectionError):
        session.get(counters_url, timeout=5)


# ---- more than one OAuth client (extra_clients) ---------------------------------------


def test_extra_clients_mint_their_own_tokens_each_with_its_own_rate_window(
    make_emulator: EmulatorFactory,
) -> None:
    emulator = make_emulator(extra_clients=[["client-2-id", "client-2-secret"]], rate_limit=2)
    second = sdk.ApiClient(host=emulator.base_url)
    second.get_client_credentials_token("client-2-id", "client-2-secret")
    first = raw_token(emulator)
    with pytest.raises(ApiException) as raised:  # one client's id with another's secret
        sdk.ApiClient(host=emulator.base_url).get_client_credentials_token(
            "client-2-id", CLIENT_SECRET
        )
    assert raised.value.status == 401
    conversation_id, _ = voice_call(emulator)
    path = f"/api/v2/conversations/calls/{conversation_id}"
    assert [raw(emulator, "GET", path, first).status_code for _ in range(3)] == [200, 200, 429]
    # The first client's window is spent; the second's token has its own.
    assert raw(emulator, "GET", path, second.access_token).status_code == 200
    counters = emulator.counters()
    assert counters["tokens_minted_by_client"] == {"local-client-id": 1, "client-2-id": 1}
    assert counters["requests_by_client"] == {"local-client-id": 3, "client-2-id": 1}


@pytest.mark.parametrize(
    ("extra_clients", "message"),
    [
        ([["local-client-id", "x"]], "differ"),
        ([["a", "b"], ["a", "c"]], "differ"),
        ([["a"]], "pairs"),
        ("a:b", "pairs"),
        ([["", "b"]], "extra client id"),
    ],
)
def test_extra_clients_must_be_distinct_id_and_secret_pairs(
    extra_clients: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        EmulatorConfig(extra_clients=extra_clients)
    assert EmulatorConfig(extra_clients=[["a", "b"]]).extra_clients == (("a", "b"),)
