"""Each handler with its events/ samples, and the whole chain fetch -> sync -> patch for a
live voice call and a live web-messaging conversation: the real handlers, template.yaml's
environment and routing, the emulator over HTTP, the external stub, moto."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localdev.runner import run_chain
from localdev.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"
VOICE_ID = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
VOICE_CUSTOMER = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"
MESSAGE_ID = "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b"
MESSAGE_CUSTOMER = "b4d6f8a0-2c4e-4a7b-9d1f-3e5a7c9e1f2d"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def seed_voice(box: Sandbox, attributes: dict[str, str]) -> None:
    box.emulator.create_conversation(
        media_type="VOICE",
        conversation_id=VOICE_ID,
        participants=[
            {"purpose": "customer", "id": VOICE_CUSTOMER, "attributes": attributes},
            {"purpose": "ivr"},
        ],
    )


def seed_message(box: Sandbox, attributes: dict[str, str]) -> None:
    box.emulator.create_conversation(
        media_type="MESSAGE",
        message_type="WEBMESSAGING",
        conversation_id=MESSAGE_ID,
        participants=[
            {"purpose": "customer", "id": MESSAGE_CUSTOMER, "attributes": attributes},
            {"purpose": "acd"},
        ],
    )


def outcomes(run: Any) -> list[tuple[str, str]]:
    return [(step.function, step.outcome) for step in run.steps]


# ---- the whole chain ------------------------------------------------------------------


def test_voice_call_chain_writes_the_crm_answer_to_the_customer(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001", "ivr_language": "en-US"})

    run = run_chain(box, sample("genesys-voice-customer-start.json"))

    assert outcomes(run) == [
        ("FetchAttributesFunction", "fetched"),
        ("SyncExternalFunction", "synced"),
        ("PatchAttributesFunction", "patched"),
    ]
    assert box.emulator.participant_attributes(VOICE_ID, VOICE_CUSTOMER) == {
        "case_id": "CASE-1001",
        "ivr_language": "en-US",
        "case_status": "open",
        "case_priority": "high",
    }
    requests = box.emulator.counters()["requests"]
    assert requests["GET /api/v2/conversations/calls/{id}"] == 1
    assert requests["PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"] == 1


def test_web_messaging_chain_uses_the_message_endpoints(box: Sandbox) -> None:
    seed_message(box, {"case_id": "CASE-2002", "customer_tier": "gold"})

    run = run_chain(box, sample("genesys-message-customer-start.json"))

    assert outcomes(run)[-1] == ("PatchAttributesFunction", "patched")
    attributes = box.emulator.participant_attributes(MESSAGE_ID, MESSAGE_CUSTOMER)
    assert attributes["case_status"] == "pending_customer"
    assert attributes["customer_tier"] == "gold"
    requests = box.emulator.counters()["requests"]
    assert requests["GET /api/v2/conversations/messages/{id}"] == 1
    assert requests["PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes"] == 1


def test_only_allow_listed_attributes_leave_genesys(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001", "ssn_last4": "1234", "ivr_language": "en-US"})

    run_chain(box, sample("genesys-voice-customer-start.json"))

    (sent,) = box.external.received
    assert sent["attributes"] == {"case_id": "CASE-1001"}
    assert sent["conversationId"] == VOICE_ID and sent["mediaType"] == "VOICE"


def test_nothing_changes_so_nothing_is_written_and_the_loop_stops(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001", "case_status": "open", "case_priority": "high"})

    run = run_chain(box, sample("genesys-voice-customer-start.json"))

    assert outcomes(run) == [
        ("FetchAttributesFunction", "fetched"),
        ("SyncExternalFunction", "no_change"),
    ]
    assert not any("PATCH" in route for route in box.emulator.counters()["requests"])


def test_attributes_event_of_an_unseen_participant_costs_one_read_to_learn_its_purpose(
    box: Sandbox,
) -> None:
    """The `attributes` topic names no purpose: the first event of a participant the chain
    has not seen reads the conversation once (and remembers every participant); the next
    ones need no read (tests/integration/test_write_integrity.py)."""
    seed_voice(box, {"case_id": "CASE-1001", "ivr_language": "en-US"})

    run = run_chain(box, sample("genesys-voice-attributes-update.json"))

    assert outcomes(run)[-1] == ("PatchAttributesFunction", "patched")
    requests = box.emulator.counters()["requests"]
    assert requests["GET /api/v2/conversations/calls/{id}"] == 1


def test_sync_requested_from_the_api_runs_the_chain_on_the_generic_read(box: Sandbox) -> None:
    seed_message(box, {"case_id": "CASE-2002"})

    run = run_chain(box, sample("app-sync-requested.json"))

    assert outcomes(run)[-1] == ("PatchAttributesFunction", "patched")
    requests = box.emulator.counters()["requests"]
    assert requests["GET /api/v2/conversations/{id}"] == 1  # media unknown: generic read
    # ... and the write is media-aware, from the media the read revealed
    assert requests["PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes"] == 1


def test_jmespath_mapping_maps_the_seed_crms_answer(box: Sandbox) -> None:
    box.env_overrides["SyncExternalFunction"] = {
        "ATTRIBUTE_MAPPING": json.dumps({"external_case_status": "status"})
    }
    box.env_overrides["Parameters"] = {"WRITABLE_ATTRIBUTES": "external_case_status"}
    seed_voice(box, {"case_id": "CASE-1001"})

    run_chain(box, sample("genesys-voice-customer-start.json"))

    attributes = box.emulator.participant_attributes(VOICE_ID, VOICE_CUSTOMER)
    assert attributes == {"case_id": "CASE-1001", "external_case_status": "open"}


# ---- each handler with its sample -----------------------------------------------------


def test_fetch_emits_the_fetched_event_with_correlation_id(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001"})
    event = sample("genesys-voice-customer-start.json")

    result = box.invoke("FetchAttributesFunction", event)

    assert result["outcome"] == "fetched"
    (emitted,) = box.emitted_events()
    assert emitted["detail-type"] == "ParticipantAttributesFetched"
    assert emitted["source"] == "participant-attributes"
    assert emitted["detail"] == {
        "conversationId": VOICE_ID,
        "participantId": VOICE_CUSTOMER,
        "mediaType": "VOICE",
        "attributes": {"case_id": "CASE-1001"},  # the allow-listed inputs only
        "basedOn": {},  # the current values of the writable keys: none yet
        "readAtMs": emitted["detail"]["readAtMs"],
        "correlationId": event["detail"]["metadata"]["CorrelationId"],
        "sourceEventId": event["id"],
    }
    assert abs(emitted["detail"]["readAtMs"] - time.time() * 1000) < 60_000


def test_fetch_picks_the_customer_when_the_event_names_no_participant(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001"})
    event = sample("genesys-voice-customer-start.json")
    del event["detail"]["eventBody"]["participantId"]

    assert box.invoke("FetchAttributesFunction", event)["participantId"] == VOICE_CUSTOMER


def test_fetch_drops_an_ended_conversation_with_a_reason(box: Sandbox) -> None:
    seed_voice(box, {})
    box.emulator.end_conversation(VOICE_ID)

    result = box.invoke("FetchAttributesFunction", sample("genesys-voice-customer-start.json"))

    assert result["outcome"] == "dropped" and "ended" in result["reason"]
    assert box.emitted_events() == []


def test_fetch_of_an_unknown_conversation_is_counted_not_retried(box: Sandbox) -> None:
    result = box.invoke("FetchAttributesFunction", sample("genesys-voice-customer-start.json"))
    assert result["outcome"] == "not_found"
    assert box.dead_letters("FetchAttributesFunction") == []


def test_sync_handler_emits_only_the_changed_keys(box: Sandbox) -> None:
    result = box.invoke("SyncExternalFunction", sample("app-attributes-fetched.json"))

    assert result["outcome"] == "synced"
    (emitted,) = box.emitted_events()
    assert emitted["detail-type"] == "ParticipantAttributesResolved"
    assert emitted["detail"]["attributes"] == {"case_status": "open", "case_priority": "high"}


def test_patch_handler_writes_and_emits_patched(box: Sandbox) -> None:
    seed_voice(box, {"case_id": "CASE-1001"})

    result = box.invoke("PatchAttributesFunction", sample("app-attributes-resolved.json"))

    assert result["outcome"] == "patched"
    assert box.emulator.participant_attributes(VOICE_ID, VOICE_CUSTOMER)["case_priority"] == "high"
    (emitted,) = box.emitted_events()
    assert emitted["detail-type"] == "ParticipantAttributesPatched"


def test_update_requested_by_another_system_is_patched(box: Sandbox) -> None:
    seed_message(box, {})

    run = run_chain(box, sample("app-update-requested.json"))

    assert outcomes(run) == [("PatchAttributesFunction", "patched")]
    assert box.emulator.participant_attributes(MESSAGE_ID, MESSAGE_CUSTOMER) == {
        "crm_customer_tier": "gold"
    }


def test_token_refresher_mints_then_finds_the_token_fresh(box: Sandbox) -> None:
    schedule = sample("schedule-token-refresh.json")

    first = box.invoke("TokenRefresherFunction", schedule)
    second = box.invoke("TokenRefresherFunction", schedule)
    forced = box.invoke("TokenRefresherFunction", {"force": True})

    assert [first["outcome"], second["outcome"], forced["outcome"]] == [
        "token_minted",
        "token_fresh",
        "token_minted",
    ]
    assert box.emulator.counters()["tokens_minted"] == 2


def test_functions_reuse_the_refreshers_token(box: Sandbox) -> None:
    box.invoke("TokenRefresherFunction", sample("schedule-token-refresh.json"))
    seed_voice(box, {"case_id": "CASE-1001"})

    run_chain(box, sample("genesys-voice-customer-start.json"))

    assert box.emulator.counters()["tokens_minted"] == 1


def test_a_duplicate_delivery_does_the_work_once(
    box: Sandbox, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    seed_voice(box, {"case_id": "CASE-1001"})
    event = sample("app-attributes-resolved.json")

    first = box.invoke("PatchAttributesFunction", event)
    capfd.readouterr()
    again = box.invoke("PatchAttributesFunction", copy.deepcopy(event))

    assert first == again
    assert "Duplicate delivery" in caplog.text
    assert '"Duplicate":[1.0]' in capfd.readouterr().err  # the EMF metric line
    route = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"
    assert box.emulator.counters()["requests"][route] == 1


# ---- the localdev commands -----------------------------------------------------------


def run_localdev(*args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "localdev", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(done.stdout)


@pytest.mark.parametrize(
    ("event", "media"),
    [("genesys-voice-customer-start.json", "calls"), ("genesys-message-customer-start.json", "")],
)
def test_pipeline_command_runs_the_chain_on_a_seeded_conversation(event: str, media: str) -> None:
    output = run_localdev("pipeline", str(EVENTS / event))

    assert [step["function"] for step in output["steps"]] == [
        "FetchAttributesFunction",
        "SyncExternalFunction",
        "PatchAttributesFunction",
    ]
    assert output["steps"][-1] == {
        "event": event,
        "function": "PatchAttributesFunction",
        "detail-type": "ParticipantAttributesResolved",
        "outcome": "patched",
        "reason": "",
    }
    customer = sample(event)["detail"]["eventBody"]["participantId"]
    assert output["attributes"][customer]["case_status"] == "open"


def test_invoke_command_prints_only_the_return_value(tmp_path: Path) -> None:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"FetchAttributesFunction": {"HANDLED_MEDIA_TYPES": "MESSAGE"}}))

    output = run_localdev(
        "invoke",
        "FetchAttributesFunction",
        str(EVENTS / "genesys-voice-customer-start.json"),
        "--env-vars",
        str(env_vars),
    )

    assert output["outcome"] == "dropped"
    assert "VOICE" in output["reason"]
