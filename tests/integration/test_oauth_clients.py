"""More than one OAuth client (GenesysExtraClientCount): the whole chain in the sandbox
with two extra clients. Each conversation is pinned to one client, its Fetch and Patch
use that client's token (minted on demand by TokenRefresher into that client's own SSM
parameter), and the emulator counts which client minted and used which token."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.oauth_clients import pinned_client

from localdev.runner import run_chain
from localdev.sandbox import Sandbox, _client, sandbox

REPO = Path(__file__).resolve().parents[2]
SAMPLE = (REPO / "events" / "genesys-voice-customer-start.json").read_text()
SAMPLE_ID = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
CUSTOMER = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"  # the sample's customer participant
CLIENTS = ("pipeline", "client-2", "client-3")
# The emulator's credentials for them (the sandbox's well-known local ones).
CLIENT_IDS = {
    "pipeline": "local-client-id",
    "client-2": "local-client-2-id",
    "client-3": "local-client-3-id",
}
SSM = "/participant-attributes/dev/genesys"
TOKENS = {"pipeline": f"{SSM}/token", "client-2": f"{SSM}/client-2/token"}
TOKENS["client-3"] = f"{SSM}/client-3/token"


def conversation_pinned_to(client: str) -> str:
    for n in range(1000):
        conversation_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"oauth-clients-test/{n}"))
        if pinned_client(conversation_id, CLIENTS) == client:
            return conversation_id
    raise AssertionError(f"no conversation pinned to {client}")


@pytest.fixture
def three_clients() -> Iterator[Sandbox]:
    with sandbox(parameter_overrides={"GenesysExtraClientCount": "2"}) as box:
        yield box


def seed(box: Sandbox, conversation_id: str) -> str:
    box.emulator.create_conversation(
        media_type="VOICE",
        conversation_id=conversation_id,
        participants=[
            {"purpose": "customer", "id": CUSTOMER, "attributes": {"case_id": "CASE-1001"}},
            {"purpose": "ivr"},
        ],
    )
    return CUSTOMER


def start_event(conversation_id: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE.replace(SAMPLE_ID, conversation_id))
    return event


def stored_token(name: str) -> str | None:
    try:
        value = _client("ssm").get_parameter(Name=name, WithDecryption=True)
    except _client("ssm").exceptions.ParameterNotFound:
        return None
    return str(value["Parameter"]["Value"])


def test_two_conversations_on_two_clients_each_use_their_own_minted_token(
    three_clients: Sandbox,
) -> None:
    box = three_clients
    first, second = conversation_pinned_to("pipeline"), conversation_pinned_to("client-3")
    customers = {first: seed(box, first), second: seed(box, second)}

    runs = {cid: run_chain(box, start_event(cid)) for cid in (first, second)}

    for conversation_id, client in ((first, "pipeline"), (second, "client-3")):
        steps = runs[conversation_id].steps
        assert [(s.function, s.outcome) for s in steps] == [
            ("FetchAttributesFunction", "fetched"),
            ("SyncExternalFunction", "synced"),
            ("PatchAttributesFunction", "patched"),
        ]
        # Fetch and Patch of one conversation name the same client (the log line's field).
        assert steps[0].result["genesysClient"] == steps[2].result["genesysClient"] == client
        written = box.emulator.participant_attributes(conversation_id, customers[conversation_id])
        assert written["case_status"] == "open"
    counters = box.emulator.counters()
    # Each used client minted once (on demand, through TokenRefresher); client-2 was not
    # needed, so it has no token yet.
    assert counters["tokens_minted_by_client"] == {
        CLIENT_IDS["pipeline"]: 1,
        CLIENT_IDS["client-3"]: 1,
    }
    # A GET and a PATCH on each client's own token.
    assert counters["requests_by_client"] == {
        CLIENT_IDS["pipeline"]: 2,
        CLIENT_IDS["client-3"]: 2,
    }
    pipeline_token, client_3_token = (
        stored_token(TOKENS["pipeline"]),
        stored_token(TOKENS["client-3"]),
    )
    assert pipeline_token and client_3_token and pipeline_token != client_3_token
    assert stored_token(TOKENS["client-2"]) is None


def test_the_scheduled_refresh_mints_a_token_for_every_client(three_clients: Sandbox) -> None:
    box = three_clients
    schedule = json.loads((REPO / "events" / "schedule-token-refresh.json").read_text())

    result = box.invoke("TokenRefresherFunction", schedule)

    assert result["outcome"] == "token_minted"
    assert box.emulator.counters()["tokens_minted_by_client"] == dict.fromkeys(
        CLIENT_IDS.values(), 1
    )
    tokens = {name: stored_token(parameter) for name, parameter in TOKENS.items()}
    assert all(tokens.values()) and len(set(tokens.values())) == 3, "one token per client"
    again = box.invoke("TokenRefresherFunction", schedule)
    assert again["outcome"] == "token_fresh"  # each client's token is fresh: none minted
    assert sum(box.emulator.counters()["tokens_minted_by_client"].values()) == 3


def test_a_function_cannot_ask_the_refresher_for_a_client_that_is_not_configured(
    three_clients: Sandbox,
) -> None:
    result = three_clients.invoke("TokenRefresherFunction", {"client": "client-4"})

    assert result["outcome"] == "rejected"
    assert three_clients.emulator.counters()["tokens_minted_by_client"] == {}


def test_localdev_pipeline_with_extra_clients_runs_the_chain_on_the_pinned_client() -> None:
    """`python -m localdev pipeline EVENT --extra-clients 2`, as an operator tries it."""
    client = pinned_client(SAMPLE_ID, CLIENTS)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "localdev",
            "pipeline",
            str(REPO / "events" / "genesys-voice-customer-start.json"),
            "--extra-clients",
            "2",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert [s["outcome"] for s in output["steps"]] == ["fetched", "synced", "patched"]
    assert output["requests_by_client"] == {CLIENT_IDS[client]: 2}  # its GET and its PATCH
    assert f'"genesysClient":"{client}"' in done.stderr  # the Step done lines name it


def test_a_missing_client_secret_is_a_configuration_error_and_the_others_still_refresh(
    three_clients: Sandbox,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The likeliest mistake with extra clients: one credential parameter not created."""
    import logging

    box = three_clients
    _client("ssm").delete_parameter(Name=f"{SSM}/client-2/client-secret")
    schedule = json.loads((REPO / "events" / "schedule-token-refresh.json").read_text())

    with caplog.at_level(logging.INFO):
        result = box.invoke("TokenRefresherFunction", schedule)

    assert result["outcome"] == "failed"  # dead-lettered at once, not retried
    assert "client-2/client-secret" in result["error"] and "does not exist" in result["error"]
    # pipeline and client-3 were refreshed all the same
    assert box.emulator.counters()["tokens_minted_by_client"] == {
        CLIENT_IDS["pipeline"]: 1,
        CLIENT_IDS["client-3"]: 1,
    }
    assert stored_token(TOKENS["pipeline"]) and stored_token(TOKENS["client-3"])
    assert [r.client for r in caplog.records if r.getMessage().startswith("Could not refresh")] == [  # type: ignore[attr-defined]
        "client-2"
    ]
    assert not [r for r in caplog.records if r.exc_info], "no traceback"

    # A conversation pinned to client-2: its Fetch reports the configuration error too.
    conversation_id = conversation_pinned_to("client-2")
    seed(box, conversation_id)
    fetched = box.invoke("FetchAttributesFunction", start_event(conversation_id))
    assert fetched["outcome"] == "failed"
    assert "could not mint" in fetched["error"]
    assert any(
        r.getMessage().startswith("Configuration error; dead-lettered") for r in caplog.records
    )
    printed = capfd.readouterr()
    assert '"ConfigurationError":[1.0]' in printed.out + printed.err  # the metric
