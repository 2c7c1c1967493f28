"""`localdev invoke` and `localdev pipeline` as a newcomer runs them: several events against
one sandbox, a prepared conversation, a CRM answer from a file, the `attributes` events
Genesys sends back, and one-line usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
CALL = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
CUSTOMER = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"
OLD_LEG = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
AGENT = "7c9e1a3b-5d7f-4b9a-8c2e-4f6a8b0c2d4e"


def localdev(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localdev", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )


def write(path: Path, document: Any) -> str:
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return str(path)


@pytest.fixture
def conversation_file(tmp_path: Path) -> str:
    """A call after a reconnect: an ended customer leg, the live one, and an agent."""
    return write(
        tmp_path / "conversation.json",
        {
            "id": CALL.upper(),  # ids compare case-insensitively
            "media_type": "VOICE",
            "participants": [
                {"id": OLD_LEG, "purpose": "customer", "state": "disconnected"},
                {"id": CUSTOMER, "purpose": "customer", "attributes": {"case_id": "CASE-1001"}},
                {"id": AGENT, "purpose": "agent", "attributes": {"agent_note": "private"}},
            ],
        },
    )


def test_a_pipeline_of_two_events_with_a_crm_answer_and_echoes(
    tmp_path: Path, conversation_file: str
) -> None:
    answer = write(
        tmp_path / "answer.json",
        '{"attributes": {"crm_synced_at": "{now}", "fraud_flag": "cleared"}}',
    )

    done = localdev(
        "pipeline",
        str(EVENTS / "genesys-voice-customer-start.json"),
        str(EVENTS / "genesys-voice-customer-start.json"),  # redelivered: nothing twice
        "--conversation",
        conversation_file,
        "--external-answer",
        answer,
        "--echo-attributes",
    )

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    steps = [(s["event"], s["function"], s["outcome"]) for s in output["steps"]]
    first = "genesys-voice-customer-start.json"
    assert steps[:4] == [
        (first, "FetchAttributesFunction", "fetched"),
        (first, "SyncExternalFunction", "synced"),
        (first, "PatchAttributesFunction", "patched"),
        (first, "FetchAttributesFunction", "no_change"),  # the echo: inputs unchanged
    ]
    assert output["steps"][3]["reason"] == "allow-listed inputs unchanged since the last sync"
    customer = output["attributes"][CUSTOMER]
    assert customer["crm_synced_at"].isdigit() and "fraud_flag" not in customer
    assert output["attributes"][AGENT] == {"agent_note": "private"}
    assert output["attributes"][OLD_LEG] == {}
    assert (
        output["requests"]["PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"]
        == 1
    )


def test_pipeline_says_why_nothing_ran(tmp_path: Path) -> None:
    event = json.loads((EVENTS / "genesys-voice-customer-start.json").read_text())
    event["detail"]["eventBody"]["mediaType"] = "EMAIL"

    done = localdev("pipeline", write(tmp_path / "email.json", event))

    assert done.returncode == 0
    assert json.loads(done.stdout)["steps"] == []
    assert "email.json: no rule matched, nothing ran" in done.stderr
    assert "FetchAttributesFunction (GenesysConversationEvent): detail differ" in done.stderr


BAD_USES = {
    "missing event file": (["pipeline", "no-such-event.json"], "no such file"),
    "event not JSON": (["invoke", "FetchAttributesFunction", "{bad}"], "not valid JSON"),
    "bad --env-vars": (["pipeline", "{event}", "--env-vars", "{bad}"], "--env-vars"),
    "bad --conversation": (["pipeline", "{event}", "--conversation", "{list}"], "purpose"),
    "bad --external-answer": (["pipeline", "{event}", "--external-answer", "{bad}"], "JSON"),
    "unknown function": (["invoke", "NoSuchFunction", "{event}"], "unknown function"),
    "no event file": (["pipeline"], "required: EVENT_FILE"),
    "port not a number": (["emulator", "--port", "abc"], "invalid int value"),
}


@pytest.mark.parametrize(("args", "says"), BAD_USES.values(), ids=BAD_USES.keys())
def test_a_usage_error_is_one_line_and_exit_status_2(
    tmp_path: Path, args: list[str], says: str
) -> None:
    files = {
        "{event}": str(EVENTS / "genesys-voice-customer-start.json"),
        "{bad}": write(tmp_path / "bad.json", "{not json"),
        "{list}": write(tmp_path / "list.json", [{"participants": [{"id": "x"}]}]),
    }

    done = localdev(*[files.get(arg, arg) for arg in args])

    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("note:")]
    assert len(lines) == 1, done.stderr
    assert says in lines[0] and "Traceback" not in done.stderr


# ---- every write exactly once, in order (issue 11's runs, as a newcomer repeats them) ----

QUEUED = EVENTS / "examples"
CALL_PATCH = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"


def test_open_closed_open_update_requests_end_at_open_with_three_patches() -> None:
    done = localdev(
        "pipeline",
        str(QUEUED / "api-queued-write-open.json"),
        str(QUEUED / "api-queued-write-closed.json"),
        str(QUEUED / "api-queued-write-open.json"),  # the same values again: written again
    )

    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    assert [s["outcome"] for s in output["steps"]] == ["http 202", "patched"] * 3
    assert output["attributes"][CUSTOMER] == {"crm_case_state": "open"}
    assert output["requests"][CALL_PATCH] == 3


def test_a_redelivered_genesys_event_with_a_new_timestamp_does_nothing_again(
    tmp_path: Path,
) -> None:
    event = json.loads((EVENTS / "genesys-voice-customer-start.json").read_text())
    again = json.loads(json.dumps(event))
    again["id"] = "b7e2c1d0-0000-4000-8000-000000000001"  # EventBridge's id for the redelivery
    again["detail"]["timestamp"] = "2026-11-21T11:30:45.013Z"

    done = localdev(
        "pipeline", write(tmp_path / "first.json", event), write(tmp_path / "again.json", again)
    )

    output = json.loads(done.stdout)
    assert [s["event"] for s in output["steps"]].count("again.json") == 1  # answered as done
    assert output["requests"]["GET /api/v2/conversations/calls/{id}"] == 1
    assert output["requests"][CALL_PATCH] == 1


@pytest.mark.parametrize("event_time", ["yesterday", 1.5e12, None, "future"])
def test_an_event_with_a_bad_or_future_time_is_rejected_and_nothing_is_written(
    tmp_path: Path, event_time: Any
) -> None:
    import time

    event = json.loads((EVENTS / "genesys-voice-customer-start.json").read_text())
    body = event["detail"]["eventBody"]
    if event_time == "future":
        body["eventTime"] = int(time.time() * 1000) + 24 * 3600 * 1000
    elif event_time is None:
        del body["eventTime"]
        event["time"] = "not a time"
    else:
        body["eventTime"] = event_time
        event["time"] = "never"

    done = localdev("pipeline", write(tmp_path / "event.json", event))

    output = json.loads(done.stdout)
    assert [s["outcome"] for s in output["steps"]] == ["rejected"]
    assert "eventTime" in output["steps"][0]["reason"] or "time" in output["steps"][0]["reason"]
    assert CALL_PATCH not in output["requests"]
