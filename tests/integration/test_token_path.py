"""The token path: a function that finds no usable token asks TokenRefresher for one (a
synchronous invoke; in the sandbox its real handler runs in-process, one invocation at a
time as with reserved concurrency 1) and never reads the client secret itself.

Real parts: the functions' handlers from template.yaml, moto's SSM, the Genesys emulator
over HTTP (its counters say how many tokens were minted).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge import aws as aws_adapters
from attribute_bridge.budget import Budget
from attribute_bridge.errors import Unauthorized
from attribute_bridge.token_store import StoredToken, TokenSettings, TokenStore

from localdev.sandbox import LocalTokenRefresher, Sandbox, environment_set

EVENTS = Path(__file__).resolve().parents[2] / "events"
FETCH, PATCH, API = "FetchAttributesFunction", "PatchAttributesFunction", "AttributesApiFunction"
REFRESHER = "TokenRefresherFunction"


def conversation_start(box: Sandbox) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(
        (EVENTS / "genesys-voice-customer-start.json").read_text(encoding="utf-8")
    )
    event["id"] = str(uuid.uuid4())
    conversation_id = str(uuid.uuid4())
    body = event["detail"]["eventBody"]
    body.update(conversationId=conversation_id, participantId=str(uuid.uuid4()))
    event["detail"]["topicName"] = f"v2.detail.events.conversation.{conversation_id}.customer.start"
    box.ensure_conversation(event)
    return event


class SsmReads:
    """Every SSM GetParameter name the layer's client sends, and whether TokenRefresher
    was running at that moment (a botocore event hook on the real client: it observes)."""

    def __init__(self, refresher: LocalTokenRefresher) -> None:
        self.reads: list[tuple[str, bool]] = []
        self._refresher = refresher
        self._client = aws_adapters.aws_client("ssm")
        self._client.meta.events.register("provide-client-params.ssm.GetParameter", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.reads.append((params["Name"], self._refresher.running))

    def by_others(self) -> set[str]:
        return {name for name, in_refresher in self.reads if not in_refresher}

    def by_refresher(self) -> set[str]:
        return {name for name, in_refresher in self.reads if in_refresher}


def secret_names(box: Sandbox) -> set[str]:
    env = box.environment(REFRESHER)
    return {env["GENESYS_CLIENT_ID_PARAMETER"], env["GENESYS_CLIENT_SECRET_PARAMETER"]}


def test_a_function_with_no_token_gets_one_from_the_refresher_and_never_reads_the_secret(
    box: Sandbox,
) -> None:
    assert box.token_refresher is not None
    reads = SsmReads(box.token_refresher)

    first = box.invoke(FETCH, conversation_start(box))

    assert first["outcome"] == "fetched"
    assert box.token_refresher.invocations == 1
    assert box.emulator.counters()["tokens_minted"] == 1
    assert secret_names(box) <= reads.by_refresher()  # the recorder sees secret reads...
    assert not secret_names(box) & reads.by_others()  # ...and Fetch made none
    # The next cold function finds the token in SSM: no invoke, no mint.
    second = box.invoke(FETCH, conversation_start(box))
    assert second["outcome"] == "fetched"
    assert box.token_refresher.invocations == 1
    assert box.emulator.counters()["tokens_minted"] == 1
    assert not secret_names(box) & reads.by_others()
    for function in (FETCH, PATCH, API):
        assert "GENESYS_CLIENT_SECRET_PARAMETER" not in box.environment(function)


def test_the_callers_log_lines_keep_its_own_name_and_correlation_id(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    event = conversation_start(box)
    assert box.invoke(FETCH, event)["outcome"] == "fetched"  # the refresher ran inside it

    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line[:1] == "{"]
    done = [line for line in lines if line.get("message") == "Step done"]
    assert [line["function_name"] for line in done] == [REFRESHER, FETCH]
    assert done[-1]["correlation_id"] == event["detail"]["metadata"]["CorrelationId"]


def test_a_revoked_token_is_replaced_through_the_refresher_and_the_call_retried_once(
    box: Sandbox,
) -> None:
    assert box.token_refresher is not None
    assert box.invoke(FETCH, conversation_start(box))["outcome"] == "fetched"
    box.emulator.revoke_tokens()  # the stored token still looks fresh, Genesys says 401

    again = box.invoke(FETCH, conversation_start(box))

    assert again["outcome"] == "fetched"
    # The reader told the refresher which token was refused (its fingerprint), so the
    # refresher minted although the stored token had hours to live.
    assert box.token_refresher.invocations == 2
    assert box.emulator.counters()["tokens_minted"] == 2


def test_credentials_genesys_refuses_are_a_configuration_error_not_retried(
    box: Sandbox,
) -> None:
    box.emulator.configure(client_secret=f"rotated-{uuid.uuid4().hex}")

    result = box.invoke(FETCH, conversation_start(box))

    assert result["outcome"] == "failed"  # dead-lettered with the reason, not retried
    assert "could not mint" in result["error"]
    assert len(box.dead_letters(FETCH)) == 1
    assert box.emulator.counters()["tokens_minted"] == 0


def reader(
    box: Sandbox, refresher: LocalTokenRefresher | None = None, **options: Any
) -> TokenStore:
    """A cold container's token store, as wiring builds it for Fetch (its own SSM cache)."""
    from attribute_bridge.aws import ParameterStore

    env = box.environment(FETCH)
    return TokenStore(
        TokenSettings(parameter_name=env["GENESYS_TOKEN_PARAMETER"]),
        parameters=ParameterStore(),
        refresher=refresher or box.token_refresher,
        **options,
    )


def test_concurrent_cold_readers_mint_once(box: Sandbox) -> None:
    readers = [reader(box) for _ in range(12)]
    aws_adapters.aws_client("ssm")  # one shared client, built before the threads start
    start = threading.Barrier(len(readers))
    tokens: list[str] = []
    errors: list[BaseException] = []

    def run(store: TokenStore) -> None:
        try:
            start.wait()
            tokens.append(store.access_token(Budget.seconds(10)))
        except BaseException as error:  # reported below, not swallowed
            errors.append(error)

    threads = [threading.Thread(target=run, args=(store,)) for store in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert len(tokens) == len(readers) and len(set(tokens)) == 1
    assert box.emulator.counters()["tokens_minted"] == 1
    assert box.token_refresher is not None
    assert box.token_refresher.invocations + box.token_refresher.throttled >= len(readers) - 1


def test_a_throttled_reader_waits_for_the_token_being_minted_in_ssm(box: Sandbox) -> None:
    refresher = box.token_refresher
    assert refresher is not None
    store = reader(box)
    got: list[str] = []
    with refresher.busy():  # as if another container's invoke were minting right now
        thread = threading.Thread(target=lambda: got.append(store.access_token(Budget.seconds(10))))
        thread.start()
        asked_by = time.monotonic() + 5  # a loaded machine may take a while to get there
        while refresher.throttled < 1 and time.monotonic() < asked_by:
            time.sleep(0.02)
        assert not got and refresher.throttled >= 1  # it asked, was throttled, waits
        minted = mint_directly(box)
    thread.join(timeout=10)

    assert got == [minted.access_token]
    assert refresher.invocations == 0  # it never needed its own invoke


def mint_directly(box: Sandbox) -> StoredToken:
    """What the running refresher would write: its own store, with its environment."""
    from attribute_bridge import wiring

    with environment_set(box.environment(REFRESHER)), wiring.another_container():
        minted, token = wiring.minting_store("pipeline").refresh(Budget.seconds(10))
    assert minted
    return token


def test_a_refresher_that_cannot_mint_leaves_waiting_readers_a_clear_error(box: Sandbox) -> None:
    box.emulator.configure(client_secret=f"rotated-{uuid.uuid4().hex}")
    store = reader(box)
    with pytest.raises(Unauthorized, match="could not mint"):
        store.access_token(Budget.seconds(5))
    assert box.emulator.counters()["tokens_minted"] == 0


def test_the_api_with_its_own_genesys_client_gets_its_own_token() -> None:
    import boto3

    from localdev.sandbox import sandbox

    own_client = {
        "ApiGenesysClientIdParameter": "/api/genesys/client-id",
        "ApiGenesysClientSecretParameter": "/api/genesys/client-secret",
    }
    with sandbox(parameter_overrides=own_client) as box:
        ssm = boto3.client("ssm", region_name="us-east-1")
        for name, value in zip(
            own_client.values(),
            (box.emulator.config.client_id, box.emulator.config.client_secret),
            strict=True,
        ):
            ssm.put_parameter(Name=name, Value=value, Type="SecureString")
        event = json.loads((EVENTS / "api-get-attributes.json").read_text(encoding="utf-8"))
        event["pathParameters"] = {
            "conversationId": str(uuid.uuid4()),
            "participantId": str(uuid.uuid4()),
        }
        box.ensure_conversation(event)

        answer = box.invoke(API, event)

        assert answer["statusCode"] == 200
        api_token = box.environment(API)["GENESYS_TOKEN_PARAMETER"]
        pipeline_token = box.environment(FETCH)["GENESYS_TOKEN_PARAMETER"]
        assert api_token == "/participant-attributes/dev/genesys/api-token" != pipeline_token
        assert ssm.get_parameter(Name=api_token)["Parameter"]["Type"] == "SecureString"
        with pytest.raises(ssm.exceptions.ParameterNotFound):
            ssm.get_parameter(Name=pipeline_token)  # the pipeline's token is not touched
        # The pipeline mints its own; neither function ever held a secret.
        assert box.invoke(FETCH, conversation_start(box))["outcome"] == "fetched"
        assert box.emulator.counters()["tokens_minted"] == 2
        assert box.token_refresher is not None and box.token_refresher.invocations == 2


def test_a_reader_gives_up_within_its_budget_when_the_mint_never_lands(box: Sandbox) -> None:
    from attribute_bridge.errors import TokenUnavailable

    refresher = box.token_refresher
    assert refresher is not None
    # The shortest backoff (jitter 0: one round of SSM polls ~0.8 s), so that a second ask
    # fits the 2 s on every run; a random jitter can make one round take 2.3 s.
    store = reader(box, jitter=lambda: 0.0)
    began = time.monotonic()
    with refresher.busy(), pytest.raises(TokenUnavailable, match="timed out waiting"):
        store.access_token(Budget.seconds(3.0))  # 2 s to spend (1 s reserve)
    # it stopped before the invocation's end (3 s), not after: the 1 s reserve absorbs load
    assert time.monotonic() - began < 3.0
    assert refresher.throttled >= 2  # and asked again after a round of SSM reads
    assert box.emulator.counters()["tokens_minted"] == 0
