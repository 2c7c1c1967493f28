"""The local tools explain themselves: the emulator's and the stub's control APIs refuse a
bad value with 400 and a message naming it (and keep serving), ids are compared
case-insensitively as Genesys does, and `python -m localdev emulator|external` with a bad
port or host says so in one line with exit status 2."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from localdev.emulator import GenesysEmulator
from localdev.external import ExternalSystemStub
from localdev.runner import run_chain
from localdev.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO / "events" / "genesys-voice-customer-start.json").read_text())


def post(url: str, body: Any, raw: bytes | None = None) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=5)


# ---------------------------------------------------------------------------- emulator


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"delay_seconds": "1"}, "delay_seconds must be a number, got str '1'"),
        ({"delay_seconds": -1}, "delay_seconds must be >= 0"),
        ({"delay_seconds": 3600}, "delay_seconds must be <= 300"),
        ({"count": 0}, "count must be >= 1"),
        ({"count": "2"}, "count must be a whole number, got str"),
        ({"count": True}, "count must be a whole number, got bool"),
        ({"count": 1.5}, "count must be a whole number, got float"),
        ({"status": "503"}, "status must be a whole number, got str"),
        ({"status": 700}, "status must be <= 599"),
        ({"retry_after": -1}, "retry_after must be >= 0"),
        ({"retry_after": 2.5}, "retry_after must be a whole number"),  # a string: sent as is
        ({"method": 5}, "method must be a non-empty string, got int"),
        ({"path_pattern": "("}, "path_pattern is not a regular expression"),
        ({"status": None}, "a fault needs a status, a delay_seconds > 0, or both"),
        ({"stauts": 503}, "unknown fields ['stauts']"),
    ],
)
def test_a_bad_fault_is_refused_with_400_and_the_next_request_is_served(
    genesys_emulator: GenesysEmulator, fault: dict[str, Any], says: str
) -> None:
    base = genesys_emulator.base_url
    refused = post(f"{base}/_emulator/faults", fault)

    assert refused.status_code == 400
    assert says in refused.json()["error"], refused.json()
    # nothing was stored half-way: the next API request is answered normally
    token = requests.post(
        f"{base}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(genesys_emulator.config.client_id, genesys_emulator.config.client_secret),
        timeout=5,
    )
    assert token.status_code == 200
    assert genesys_emulator.counters()["faults_served"] == 0


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"rate_limit": "300"}, "rate_limit must be a whole number, got str"),
        ({"rate_limit": 0}, "rate_limit must be >= 1"),
        ({"rate_window_seconds": "60"}, "rate_window_seconds must be a number, got str"),
        ({"token_ttl_seconds": 0}, "token_ttl_seconds must be > 0"),
        ({"max_request_bytes": 1.5}, "max_request_bytes must be a whole number, got float"),
        ({"client_id": 5}, "client_id must be a non-empty string, got int"),
        ({"ended_conversation_writes": "maybe"}, "ended_conversation_writes must be"),
        ({"port": 1}, "unknown fields ['port']"),
    ],
)
def test_bad_settings_are_refused_with_400_and_the_settings_stay(
    genesys_emulator: GenesysEmulator, settings: dict[str, Any], says: str
) -> None:
    url = f"{genesys_emulator.base_url}/_emulator/config"
    before = post(url, {}).json()

    refused = post(url, settings)

    assert refused.status_code == 400 and says in refused.json()["error"], refused.json()
    assert post(url, {}).json() == before


@pytest.mark.parametrize(
    ("body", "raw", "says"),
    [
        ({"media_type": 5}, None, "media_type must be a non-empty string, got int"),
        ({"conversation_id": 7}, None, "conversation_id must be a non-empty string, got int"),
        ({"message_type": ["x"]}, None, "message_type must be a non-empty string, got list"),
        (None, b"{not json", "the body is not valid JSON"),
        ([1, 2], None, "the body must be a JSON object"),
    ],
)
def test_a_bad_conversation_is_refused_with_400(
    genesys_emulator: GenesysEmulator, body: Any, raw: bytes | None, says: str
) -> None:
    refused = post(f"{genesys_emulator.base_url}/_emulator/conversations", body, raw)
    assert refused.status_code == 400 and says in refused.json()["error"], refused.json()


def test_upper_case_ids_find_the_conversation_as_in_genesys(
    genesys_emulator: GenesysEmulator,
) -> None:
    conversation_id, participant_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = genesys_emulator.create_conversation(
        conversation_id=conversation_id.upper(),
        participants=[{"purpose": "customer", "id": participant_id.upper()}],
    )
    # Genesys answers ids in lower case
    assert created["id"] == conversation_id
    assert created["participants"][0]["id"] == participant_id
    base = genesys_emulator.base_url
    attributes = requests.get(
        f"{base}/_emulator/conversations/{conversation_id.upper()}"
        f"/participants/{participant_id.upper()}/attributes",
        timeout=5,
    )
    assert attributes.status_code == 200
    assert genesys_emulator.get_conversation(conversation_id.upper()) == created
    with pytest.raises(ValueError, match="already exists"):
        genesys_emulator.create_conversation(conversation_id=conversation_id)


def test_an_event_with_upper_case_ids_runs_the_whole_chain(box: Sandbox) -> None:
    conversation_id, participant_id = str(uuid.uuid4()), str(uuid.uuid4())
    event = copy.deepcopy(SAMPLE)
    detail = event["detail"]
    detail["topicName"] = f"v2.detail.events.conversation.{conversation_id.upper()}.customer.start"
    detail["eventBody"].update(
        conversationId=conversation_id.upper(), participantId=participant_id.upper()
    )

    run = run_chain(box, event)

    assert [step.outcome for step in run.steps] == ["fetched", "synced", "patched"]
    written = box.emulator.participant_attributes(conversation_id, participant_id)
    assert written["crm_segment"] == "seeded"  # the sandbox's answer for a new conversation


# ---------------------------------------------------------------------------- external stub


@pytest.mark.parametrize(
    ("body", "raw", "says"),
    [
        ({"mode": "slow", "seconds": -1}, None, "seconds must be >= 0"),
        ({"mode": "slow", "seconds": "1"}, None, "seconds must be a number, got str"),
        ({"mode": "slow", "seconds": 3600}, None, "seconds must be <= 300"),
        ({"mode": "500", "count": "2"}, None, "count must be a whole number, got str"),
        ({"mode": "500", "count": 0}, None, "count must be >= 1"),
        ({"mode": 500}, None, "mode must be one of"),
        ({"count": 1}, None, "missing fields ['mode']"),
        ({"mode": "500", "times": 2}, None, "unknown fields ['times']"),
        (None, b"{", "the body is not valid JSON"),
        (None, b"", "the body must be a JSON object"),
    ],
)
def test_a_bad_failure_order_is_refused_with_400_and_the_next_sync_works(
    external_stub: ExternalSystemStub, body: Any, raw: bytes | None, says: str
) -> None:
    refused = post(f"{external_stub.base_url}/_external/fail", body, raw)

    assert refused.status_code == 400 and says in refused.json()["error"], refused.json()
    answer = post(external_stub.sync_url, {"attributes": {"case_id": "CASE-1001"}})
    assert answer.status_code == 200
    assert answer.json()["attributes"]["case_status"] == "open"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"match": {}}, "missing fields ['answer']"),
        ({"match": [], "answer": {}}, "match and answer must be objects"),
        ({"match": {}, "answer": {}, "when": 1}, "unknown fields ['when']"),
    ],
)
def test_a_bad_rule_is_refused_with_400(
    external_stub: ExternalSystemStub, body: Any, says: str
) -> None:
    refused = post(f"{external_stub.base_url}/_external/rules", body)
    assert refused.status_code == 400 and says in refused.json()["error"], refused.json()


def test_the_stub_refuses_a_negative_slow_seconds_in_python_too() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        ExternalSystemStub().fail_next("slow", seconds=-1)
    with pytest.raises(ValueError, match="slow_seconds must be >= 0"):
        ExternalSystemStub(slow_seconds=-1)


# ---------------------------------------------------------------------------- serve errors


def run_localdev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", ["emulator", "external"])
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--port", "99999"], "--port must be 0-65535, got 99999"),
        (["--port", "-1"], "--port must be 0-65535, got -1"),
        (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid:0"),
    ],
)
def test_a_bad_port_or_host_is_one_line_and_status_2(
    command: str, args: list[str], says: str
) -> None:
    result = run_localdev(command, *args)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"localdev {command}: ") and says in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["emulator", "external"])
def test_a_port_in_use_is_one_line_and_status_2(command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_localdev(command, "--port", str(port))

    assert result.returncode == 2
    assert result.stderr == (
        f"localdev {command}: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )


def test_a_stub_rule_matches_ids_case_insensitively(external_stub: ExternalSystemStub) -> None:
    conversation_id = str(uuid.uuid4())
    external_stub.add_rule({"conversationId": conversation_id.upper()}, {"case_status": "won"})

    answer = post(external_stub.sync_url, {"conversationId": conversation_id, "attributes": {}})

    assert answer.json()["attributes"] == {"case_status": "won"}
    other = post(external_stub.sync_url, {"conversationId": "X" + conversation_id[1:]})
    assert other.json()["attributes"] == {}
