"""The Genesys adapter and the SSM token store, driven over real HTTP against the emulator
with the real SDK ApiClient, and moto for SSM and the DynamoDB lease."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import requests
from attribute_bridge.aws import ParameterStore, TokenLease
from attribute_bridge.budget import Budget
from attribute_bridge.errors import (
    Conflict,
    GenesysUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    TokenUnavailable,
    Unauthorized,
)
from attribute_bridge.genesys.client import GenesysClient, RetryPolicy
from attribute_bridge.genesys.endpoints import resolve_endpoints
from attribute_bridge.token_store import ClientCredentialsMinter, TokenSettings, TokenStore

from localdev.emulator import GenesysEmulator
from tests.conftest import (
    CLIENT_ID_PARAMETER,
    CLIENT_SECRET_PARAMETER,
    LEASE_TABLE,
    TOKEN_PARAMETER,
)

CALL_PATCH = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"
MESSAGE_PATCH = "PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes"
GENERIC_PATCH = "PATCH /api/v2/conversations/{id}/participants/{pid}/attributes"
CALL_GET = "GET /api/v2/conversations/calls/{id}"


class Container:
    """One Lambda container's worth of adapters: its own caches, sessions and sleeps."""

    def __init__(
        self,
        emulator: GenesysEmulator,
        session: requests.Session | None = None,
        real_sleeps: bool = False,
        **retry: Any,
    ) -> None:
        self.sleeps: list[float] = []
        parameters = ParameterStore()
        self.tokens = TokenStore(
            TokenSettings(parameter_name=TOKEN_PARAMETER),
            parameters=parameters,
            lease=TokenLease(LEASE_TABLE),
            minter=ClientCredentialsMinter(
                emulator.base_url,
                parameters,
                CLIENT_ID_PARAMETER,
                CLIENT_SECRET_PARAMETER,
                requests.Session(),
            ),
            sleep=lambda seconds: None,
        )
        policy = RetryPolicy(
            sleep=time.sleep if real_sleeps else self.sleeps.append, random=lambda: 0.5, **retry
        )
        self.genesys = GenesysClient(
            resolve_endpoints(emulator.base_url),
            self.tokens,
            session or requests.Session(),
            policy,
        )


@pytest.fixture
def container(genesys_emulator: GenesysEmulator, aws: dict[str, Any]) -> Container:
    return Container(genesys_emulator)


@pytest.fixture
def call(genesys_emulator: GenesysEmulator) -> dict[str, Any]:
    return genesys_emulator.create_conversation(
        media_type="VOICE",
        participants=[
            {"purpose": "customer", "attributes": {"case_id": "CASE-1001", "lang": "en"}},
            {"purpose": "ivr"},
        ],
    )


def customer_id(conversation: dict[str, Any]) -> str:
    return next(p["id"] for p in conversation["participants"] if p["purpose"] == "customer")


class SsmReads:
    """Counts GetParameter calls that reach SSM (past Powertools' cache)."""

    def __init__(self, ssm_client: Any) -> None:
        self.count = 0
        ssm_client.meta.events.register("before-call.ssm.GetParameter", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1


def budget(seconds: float = 8.0) -> Budget:
    return Budget.seconds(seconds, reserve=0.0)


# ---- reading and writing ------------------------------------------------------------


def test_reads_a_voice_call_media_aware_as_plain_values(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    conversation = container.genesys.read_conversation(call["id"], "VOICE", budget())

    customer = next(p for p in conversation.participants if p.purpose == "customer")
    assert customer.attributes == {"case_id": "CASE-1001", "lang": "en"}
    assert customer.state == "connected"
    assert {p.purpose for p in conversation.participants} == {"customer", "ivr"}
    assert not conversation.ended
    assert genesys_emulator.counters()["requests"][CALL_GET] == 1


def test_returns_the_sdk_model_for_each_media(
    container: Container, genesys_emulator: GenesysEmulator
) -> None:
    message = genesys_emulator.create_conversation(
        media_type="MESSAGE", message_type="WEBMESSAGING"
    )
    chat = genesys_emulator.create_conversation(media_type="CHAT")

    assert type(
        container.genesys.get_conversation(message["id"], "MESSAGE", budget())
    ).__name__ == ("MessageConversation")
    generic = container.genesys.get_conversation(chat["id"], "CHAT", budget())
    assert type(generic).__name__ == "Conversation"
    assert container.genesys.read_conversation(chat["id"], "CHAT", budget()).participants


@pytest.mark.parametrize(
    ("media", "route"), [("VOICE", CALL_PATCH), ("MESSAGE", MESSAGE_PATCH), ("", GENERIC_PATCH)]
)
def test_patch_merges_on_the_media_aware_endpoint(
    container: Container, genesys_emulator: GenesysEmulator, media: str, route: str
) -> None:
    conversation = genesys_emulator.create_conversation(
        media_type=media or "VOICE",
        participants=[{"purpose": "customer", "attributes": {"keep": "me", "case_status": "new"}}],
    )
    pid = customer_id(conversation)

    container.genesys.patch_attributes(
        conversation["id"], pid, media, {"case_status": "open"}, budget()
    )

    assert genesys_emulator.participant_attributes(conversation["id"], pid) == {
        "keep": "me",
        "case_status": "open",
    }
    assert genesys_emulator.counters()["requests"][route] == 1


def test_unknown_conversation_is_not_found(container: Container) -> None:
    with pytest.raises(NotFound):
        container.genesys.read_conversation(
            "11111111-2222-4333-8444-555555555555", "VOICE", budget()
        )


def test_a_call_read_as_a_message_is_not_found(container: Container, call: dict[str, Any]) -> None:
    with pytest.raises(NotFound):
        container.genesys.read_conversation(call["id"], "MESSAGE", budget())


def test_genesys_400_keeps_genesys_message(container: Container, call: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as raised:
        container.genesys.patch_attributes(
            call["id"],
            customer_id(call),
            "VOICE",
            {"count": 3},
            budget(),  # type: ignore[dict-item]
        )
    assert "count" in str(raised.value)


@pytest.mark.parametrize("bad_id", ["../../users/me", "abc?x=1", "a#b", ""])
def test_ids_that_are_not_uuids_never_reach_genesys(
    container: Container, genesys_emulator: GenesysEmulator, bad_id: str
) -> None:
    from attribute_bridge.errors import InvalidInput

    with pytest.raises(InvalidInput):
        container.genesys.read_conversation(bad_id, "VOICE", budget())
    assert genesys_emulator.counters()["requests"] == {}


# ---- tokens ---------------------------------------------------------------------------


def test_one_token_and_one_ssm_read_serve_many_calls(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator, aws: dict
) -> None:
    from attribute_bridge.aws import aws_client

    reads = SsmReads(aws_client("ssm"))
    for _ in range(20):
        container.genesys.read_conversation(call["id"], "VOICE", budget())

    assert genesys_emulator.counters()["tokens_minted"] == 1
    # bootstrap: the empty read, the double-check under the lease, two credential reads,
    # and one read of the token it wrote (the write clears the parameter cache)
    assert reads.count == 5
    second = Container(genesys_emulator)  # a second container finds the token in SSM
    for _ in range(20):
        second.genesys.read_conversation(call["id"], "VOICE", budget())
    assert reads.count == 6
    assert genesys_emulator.counters()["tokens_minted"] == 1


def test_minting_records_the_expiry_genesys_gave(
    container: Container, call: dict[str, Any], aws: dict, genesys_emulator: GenesysEmulator
) -> None:
    import json
    import time

    container.genesys.read_conversation(call["id"], "VOICE", budget())
    stored = aws["ssm"].get_parameter(Name=TOKEN_PARAMETER, WithDecryption=True)["Parameter"]
    token = json.loads(stored["Value"])

    assert stored["Type"] == "SecureString"
    assert set(token) == {"access_token", "token_type", "expires_at"}
    ttl = genesys_emulator.config.token_ttl_seconds
    assert abs(token["expires_at"] - (time.time() + ttl)) < 60


def test_fifty_cold_containers_mint_once(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    from attribute_bridge.aws import aws_client

    # Lambda containers are separate processes; here they are threads of one process, so
    # build the shared boto3 clients first rather than 50 times at once under one GIL.
    aws_client("ssm"), aws_client("dynamodb")
    containers = [Container(genesys_emulator) for _ in range(50)]
    tokens: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(containers))

    def cold_start(container: Container) -> None:
        try:
            start.wait()
            tokens.append(container.tokens.access_token(budget(20)))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=cold_start, args=(c,)) for c in containers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert not errors
    assert len(tokens) == 50 and len(set(tokens)) == 1
    assert genesys_emulator.counters()["tokens_minted"] == 1


def test_revoked_token_recovers_within_one_retry(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    container.genesys.read_conversation(call["id"], "VOICE", budget())
    genesys_emulator.revoke_tokens()

    conversation = container.genesys.read_conversation(call["id"], "VOICE", budget())

    assert conversation.id == call["id"]
    assert genesys_emulator.counters()["tokens_minted"] == 2
    assert genesys_emulator.counters()["requests"][CALL_GET] == 3  # ok, 401, ok


def test_a_second_401_is_unauthorized_not_a_loop(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="GET", path_pattern="/calls/", status=401, count=5)
    with pytest.raises(Unauthorized):
        container.genesys.read_conversation(call["id"], "VOICE", budget())
    assert genesys_emulator.counters()["requests"][CALL_GET] == 2


def test_token_endpoint_down_is_token_unavailable(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="POST", path_pattern="/oauth/token", status=503, count=3)
    with pytest.raises(TokenUnavailable):
        container.genesys.read_conversation(call["id"], "VOICE", budget())


def test_wrong_client_secret_is_unauthorized(
    container: Container, call: dict[str, Any], aws: dict
) -> None:
    aws["ssm"].put_parameter(
        Name=CLIENT_SECRET_PARAMETER, Value="wrong", Type="SecureString", Overwrite=True
    )
    with pytest.raises(Unauthorized):
        container.genesys.read_conversation(call["id"], "VOICE", budget())


def test_ssm_outage_keeps_the_cached_token_working(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    from attribute_bridge.aws import aws_client

    clock = [1000.0]
    container = Container(genesys_emulator)
    container.tokens._clock = lambda: clock[0]
    container.genesys.read_conversation(call["id"], "VOICE", budget())

    def outage(**_: Any) -> None:
        raise ConnectionError("SSM is down")

    aws_client("ssm").meta.events.register("before-call.ssm.GetParameter", outage)
    clock[0] += 600  # past the 300 s parameter cache, well before the token expires
    container.tokens._parameters.provider.clear_cache()

    assert container.genesys.read_conversation(call["id"], "VOICE", budget()).id == call["id"]


# ---- retries owned by the project ---------------------------------------------------


def test_429_within_the_budget_waits_retry_after_then_succeeds(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="GET", path_pattern="/calls/", status=429, retry_after=2)

    assert container.genesys.read_conversation(call["id"], "VOICE", budget(8)).id == call["id"]
    assert container.sleeps == [2.0]


def test_429_beyond_the_budget_raises_rate_limited_without_sleeping(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    container.tokens.access_token(budget())
    genesys_emulator.inject_fault(method="GET", path_pattern="/calls/", status=429, retry_after=30)

    with pytest.raises(RateLimited) as raised:
        container.genesys.read_conversation(call["id"], "VOICE", budget(5))

    assert raised.value.retry_after == 30
    assert container.sleeps == []
    assert genesys_emulator.counters()["requests"][CALL_GET] == 1


def test_the_emulator_rate_limit_is_honoured_end_to_end(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    genesys_emulator.configure(rate_limit=3, rate_window_seconds=1.0)
    container = Container(genesys_emulator, pace=False)  # the 429 path alone
    container.genesys._retry = RetryPolicy(pace=False)
    for _ in range(5):
        container.genesys.read_conversation(call["id"], "VOICE", budget(8))
    assert genesys_emulator.counters()["rate_limited"] >= 1


def test_the_pacer_slows_down_before_the_limit_and_meets_no_429(
    genesys_emulator: GenesysEmulator,
    aws: dict,
    call: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    genesys_emulator.configure(rate_limit=3, rate_window_seconds=1.0)
    container = Container(genesys_emulator, real_sleeps=True)  # the pacer on (the default)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            container.genesys.read_conversation(call["id"], "VOICE", budget(8))
    assert genesys_emulator.counters()["rate_limited"] == 0
    assert genesys_emulator.counters()["requests"][CALL_GET] == 5  # none sent twice
    assert time.monotonic() - started >= 0.9  # the 4th read waited for the next window
    paced = [
        r for r in caplog.records if r.getMessage() == "Genesys rate limit headroom low: pacing"
    ]
    assert paced and all(0 < r.wait <= 1.0 for r in paced)  # type: ignore[attr-defined]
    assert all(call["id"] not in r.getMessage() + str(r.__dict__) for r in paced)


def test_a_pacing_wait_beyond_the_budget_is_rate_limited_without_sending(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    genesys_emulator.configure(endpoint_rate_limits={CALL_GET: 3}, rate_window_seconds=30)
    container = Container(genesys_emulator)
    for _ in range(2):
        container.genesys.read_conversation(call["id"], "VOICE", budget())
    # 1 left of 3 for ~30 s, one container: that last one is spread over what is left of
    # the window; a ~30 s wait does not fit a 5 s budget: RateLimited, for a later retry.
    with pytest.raises(RateLimited) as raised:
        container.genesys.read_conversation(call["id"], "VOICE", budget(5))
    assert 25 < raised.value.retry_after <= 30
    assert genesys_emulator.counters()["requests"][CALL_GET] == 2  # the third never sent
    assert genesys_emulator.counters()["rate_limited"] == 0
    # The PATCH endpoint is another bucket (the token's window): it is not held back.
    container.genesys.patch_attributes(call["id"], customer_id(call), "VOICE", {"a": "b"}, budget())


class BrokenBodies(requests.Session):
    """A session whose answers break mid-body, as a flaky proxy's can (not a timeout)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")


def test_a_broken_answer_is_unavailable_and_does_not_eat_the_headroom(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    from attribute_bridge.genesys.pacer import Bucket

    container = Container(genesys_emulator, session=BrokenBodies())
    container.tokens.access_token(budget())
    with pytest.raises(GenesysUnavailable, match="ChunkedEncodingError"):
        container.genesys.read_conversation(call["id"], "VOICE", budget())
    assert len(container.sleeps) == 3  # retried like any transport failure, then given up
    pacer = container.genesys._pacer
    assert pacer is not None
    token = container.tokens.access_token(budget())
    bucket = Bucket.of(token, "GET", "/api/v2/conversations/calls/{conversationId}")
    # each of the 4 attempts was answered (with nothing): none counts as still in flight
    assert pacer._states[bucket].pending == 0


def test_409_is_retried_with_jitter_then_succeeds(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="PATCH", path_pattern="/attributes", status=409, count=2)
    container.genesys.patch_attributes(call["id"], customer_id(call), "VOICE", {"a": "b"}, budget())
    assert len(container.sleeps) == 2
    assert genesys_emulator.participant_attributes(call["id"], customer_id(call))["a"] == "b"


def test_409_that_persists_is_conflict(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="PATCH", path_pattern="/attributes", status=409, count=10)
    with pytest.raises(Conflict):
        container.genesys.patch_attributes(
            call["id"], customer_id(call), "VOICE", {"a": "b"}, budget()
        )
    assert genesys_emulator.counters()["requests"][CALL_PATCH] == 4  # 1 + 3 retries


def test_5xx_backs_off_exponentially_then_succeeds(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    container.tokens.access_token(budget())
    genesys_emulator.inject_fault(method="GET", path_pattern="/calls/", status=503, count=2)
    assert container.genesys.read_conversation(call["id"], "VOICE", budget()).id == call["id"]
    assert container.sleeps == [0.5 * 0.2, 0.5 * 0.4]  # full jitter (random=0.5), doubling


def test_5xx_that_persists_is_unavailable(
    container: Container, call: dict[str, Any], genesys_emulator: GenesysEmulator
) -> None:
    genesys_emulator.inject_fault(method="GET", path_pattern="/calls/", status=500, count=10)
    with pytest.raises(GenesysUnavailable):
        container.genesys.read_conversation(call["id"], "VOICE", budget())


def test_a_hanging_request_times_out_and_is_retried(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    container = Container(genesys_emulator, read_timeout=0.3)
    container.tokens.access_token(budget())
    genesys_emulator.inject_fault(
        method="GET", path_pattern="/calls/", status=None, delay_seconds=1.5, count=1
    )
    assert container.genesys.read_conversation(call["id"], "VOICE", budget()).id == call["id"]
    assert len(container.sleeps) == 1


def test_no_request_outlives_the_invocation(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    import time

    container = Container(genesys_emulator)
    container.tokens.access_token(budget())
    genesys_emulator.inject_fault(
        method="GET", path_pattern="/calls/", status=None, delay_seconds=3, count=5
    )
    started = time.monotonic()
    with pytest.raises(GenesysUnavailable):
        container.genesys.read_conversation(call["id"], "VOICE", budget(1.0))
    assert time.monotonic() - started < 1.5


def test_containers_sharing_a_token_meet_fewer_429s_when_they_pace(
    genesys_emulator: GenesysEmulator, aws: dict, call: dict[str, Any]
) -> None:
    """4 containers, one token, PATCHing against an endpoint limit of its own (8 per 1 s
    window): sending regardless, then pacing from the headers; the emulator counts 429s."""
    genesys_emulator.configure(endpoint_rate_limits={CALL_PATCH: 8}, rate_window_seconds=1.0)
    participant = customer_id(call)

    def burst(pace: bool) -> tuple[int, int]:
        # real waits, for the 429s and the pacer alike
        containers = [Container(genesys_emulator, real_sleeps=True, pace=pace) for _ in range(4)]
        before = genesys_emulator.counters()

        def patch_eight(container: Container) -> None:
            for n in range(8):
                container.genesys.patch_attributes(
                    call["id"], participant, "VOICE", {"n": str(n)}, budget(8)
                )

        threads = [threading.Thread(target=patch_eight, args=(c,)) for c in containers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        after = genesys_emulator.counters()
        time.sleep(1.1)  # the window closes before the next burst
        return (
            after["rate_limited"] - before["rate_limited"],
            after["attribute_writes"] - before["attribute_writes"],
        )

    unpaced_429s, unpaced_writes = burst(pace=False)
    paced_429s, paced_writes = burst(pace=True)
    assert unpaced_writes == paced_writes == 32  # every PATCH landed, either way
    assert unpaced_429s >= 4  # each container meets the full window at least once
    assert paced_429s < unpaced_429s
