"""Context-only mode (issue 15, part 2): when the external system gets only the call context
of the event (SyncContextFields) and no input attributes, FetchAttributes does not read the
conversation, so a synced customer.start costs one Genesys request, the PATCH. Counted by
the emulator's per-route counters; the write rules, the stale guard and the loop guards must
hold as in the read mode.

The real handlers from template.yaml, the emulator over HTTP, the stub, moto (the sandbox).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from localdev.runner import run_chain
from localdev.sandbox import Sandbox, sandbox
from tests.conftest import genesys_write as shared_genesys_write

EVENTS = Path(__file__).resolve().parents[2] / "events"
CALL = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
CUSTOMER = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"
AGENT = "e7a9c1d3-5f7b-4d0e-9a3c-7b9d1f3a5c7e"  # the participant of events/ignored/...user-start
CHAT = "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b"
CHAT_CUSTOMER = "b4d6f8a0-2c4e-4a7b-9d1f-3e5a7c9e1f2d"
ANI = "tel:+13175550123"  # the caller's number in events/genesys-voice-customer-start.json
CRM_ANSWER = {"case_status": "open", "case_priority": "high"}
# The CRM of this mode: it finds the caller by number, it needs no attribute.
CONTEXT_ONLY = {"SyncAllowedAttributes": "", "SyncContextFields": "ani,addressFrom"}


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def customer_start() -> dict[str, Any]:
    return sample("genesys-voice-customer-start.json")


@pytest.fixture
def context_box() -> Iterator[Sandbox]:
    """FetchMode auto (the default) with no input attributes and `ani`: context-only."""
    with sandbox(parameter_overrides=CONTEXT_ONLY) as stack:
        yield stack


def seed_call(box: Sandbox, customer: dict[str, str] | None = None) -> None:
    box.emulator.create_conversation(
        media_type="VOICE",
        conversation_id=CALL,
        participants=[
            {"purpose": "customer", "id": CUSTOMER, "attributes": dict(customer or {})},
            {"purpose": "agent", "id": AGENT, "attributes": {"agent_note": "private"}},
        ],
    )
    box.external.add_rule(match={"context": {"ani": ANI}}, answer=dict(CRM_ANSWER))


def requests_made(box: Sandbox) -> dict[str, int]:
    """Genesys requests by route, the one token request left out."""
    counted = box.emulator.counters()["requests"]
    return {route: n for route, n in counted.items() if n and route != "POST /oauth/token"}


def stored(box: Sandbox, participant: str = CUSTOMER) -> dict[str, str]:
    return box.emulator.participant_attributes(CALL, participant)


def outcomes(run: Any) -> list[str]:
    return [step.outcome for step in run.steps]


CALL_GET = "GET /api/v2/conversations/calls/{id}"
CALL_PATCH = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"


# ---- one request per conversation ---------------------------------------------------


def test_a_customer_start_costs_one_genesys_request_the_patch(context_box: Sandbox) -> None:
    seed_call(context_box, {"ivr_language": "en-US"})

    run = run_chain(context_box, customer_start())

    assert outcomes(run) == ["fetched", "synced", "patched"]
    assert requests_made(context_box) == {CALL_PATCH: 1}
    (sent,) = context_box.external.received
    assert sent["context"] == {"ani": ANI}  # the CRM got the caller's number...
    assert sent["attributes"] == {}  # ... and no attribute: none was read
    assert stored(context_box) == {"ivr_language": "en-US", **CRM_ANSWER}


def test_web_messaging_uses_the_events_media_for_the_one_patch(context_box: Sandbox) -> None:
    event = sample("genesys-message-customer-start.json")
    context_box.emulator.create_conversation(
        media_type="MESSAGE",
        message_type="WEBMESSAGING",
        conversation_id=CHAT,
        participants=[{"purpose": "customer", "id": CHAT_CUSTOMER}, {"purpose": "acd"}],
    )
    address = event["detail"]["eventBody"]["addressFrom"]
    context_box.external.add_rule(match={"context": {"addressFrom": address}}, answer=CRM_ANSWER)

    run = run_chain(context_box, event)

    assert outcomes(run)[-1] == "patched"
    route = "PATCH /api/v2/conversations/messages/{id}/participants/{pid}/attributes"
    assert requests_made(context_box) == {route: 1}
    assert context_box.emulator.participant_attributes(CHAT, CHAT_CUSTOMER) == CRM_ANSWER


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"FetchMode": "read", **CONTEXT_ONLY}, {CALL_GET: 1, CALL_PATCH: 1}),
        ({"SyncContextFields": "ani"}, {CALL_GET: 1, CALL_PATCH: 1}),  # auto, with inputs
        ({"FetchMode": "context-only", **CONTEXT_ONLY}, {CALL_PATCH: 1}),
    ],
    ids=["read-mode", "auto-with-input-attributes", "context-only"],
)
def test_the_read_mode_and_auto_with_inputs_still_read(
    overrides: dict[str, str], expected: dict[str, int]
) -> None:
    with sandbox(parameter_overrides=overrides) as box:
        seed_call(box, {"case_id": "CASE-1001"})

        run = run_chain(box, customer_start())

        assert outcomes(run) == ["fetched", "synced", "patched"]
        assert requests_made(box) == expected
        assert stored(box)["case_status"] == "open"


def test_a_customer_start_naming_no_participant_falls_back_to_the_read(
    context_box: Sandbox,
) -> None:
    seed_call(context_box)
    event = customer_start()
    del event["detail"]["eventBody"]["participantId"]

    run = run_chain(context_box, event)

    assert outcomes(run)[-1] == "patched"
    assert requests_made(context_box) == {CALL_GET: 1, CALL_PATCH: 1}
    assert stored(context_box) == CRM_ANSWER


# ---- purposes: no read, and still only customers -------------------------------------


def test_an_agent_leg_falls_back_to_the_read_and_is_not_written(context_box: Sandbox) -> None:
    seed_call(context_box)
    agent_start = sample("ignored/genesys-voice-user-start.json")  # the topic says "user"

    run = run_chain(context_box, agent_start, first=["FetchAttributesFunction"])

    assert [(step.outcome, step.reason) for step in run.steps] == [
        ("dropped", "participant is agent: not a purpose this stack writes to")
    ]
    assert requests_made(context_box) == {CALL_GET: 1}
    assert stored(context_box, AGENT) == {"agent_note": "private"}


def test_a_customer_start_for_a_participant_read_as_an_agent_writes_nothing(
    context_box: Sandbox,
) -> None:
    """A purpose a read recorded wins over the topic's word."""
    seed_call(context_box)
    agent_start = sample("ignored/genesys-voice-user-start.json")
    run_chain(context_box, agent_start, first=["FetchAttributesFunction"])  # read: an agent
    posing = customer_start()
    posing["detail"]["eventBody"]["participantId"] = AGENT

    run = run_chain(context_box, posing)

    assert outcomes(run) == ["dropped"]
    assert requests_made(context_box) == {CALL_GET: 1}  # the first event's read only
    assert context_box.external.received == []


def test_a_write_to_the_agent_after_a_context_only_chain_reads_and_is_refused(
    context_box: Sandbox,
) -> None:
    """Only the named customer is remembered: any other participant is read to learn it."""
    seed_call(context_box)
    run_chain(context_box, customer_start())
    update = sample("app-update-requested.json")
    update["detail"].update(
        conversationId=CALL, participantId=AGENT, mediaType="VOICE", attributes={"crm_x": "1"}
    )

    run = run_chain(context_box, update)

    assert outcomes(run) == ["refused"]
    assert requests_made(context_box) == {CALL_PATCH: 1, CALL_GET: 1}  # the chain's, the read
    assert stored(context_box, AGENT) == {"agent_note": "private"}


def test_without_customer_among_writable_purposes_nothing_is_asked_nor_written() -> None:
    with sandbox(parameter_overrides={**CONTEXT_ONLY, "WritablePurposes": "external"}) as box:
        seed_call(box)

        run = run_chain(box, customer_start())

        assert outcomes(run) == ["dropped"]
        assert requests_made(box) == {}
        assert box.external.received == []


# ---- the stale guard: the rare path re-reads ------------------------------------------


def genesys_write(box: Sandbox, attributes: dict[str, str]) -> None:
    """Someone else's write to this file's customer (tests.conftest.genesys_write)."""
    shared_genesys_write(box, CALL, CUSTOMER, attributes)


def resolved_by_the_chain(box: Sandbox) -> dict[str, Any]:
    """The Resolved event the context-only fetch and the sync emit (not yet patched)."""
    box.invoke("FetchAttributesFunction", customer_start())
    (fetched,) = box.emitted_events()
    assert fetched["detail"]["basedOn"] == {}  # nothing was read: no value to compare with
    box.invoke("SyncExternalFunction", fetched)
    (resolved,) = box.emitted_events()
    assert resolved["detail"]["basedOn"] == {"case_status": None, "case_priority": None}
    return resolved


@pytest.mark.parametrize("how", ["late", "replayed"])
def test_a_late_or_replayed_write_re_reads_and_fills_only_absent_keys(
    context_box: Sandbox, how: str
) -> None:
    seed_call(context_box)
    resolved = resolved_by_the_chain(context_box)
    genesys_write(context_box, {"case_status": "closed"})  # a flow set it meanwhile
    if how == "late":
        resolved["detail"]["readAtMs"] -= 120_000  # past MaxWriteDelaySeconds (60)
    else:
        resolved["detail"]["replay"] = True  # as scripts/replay_dead_letters.py sends it
    before = requests_made(context_box)

    result = context_box.invoke("PatchAttributesFunction", resolved)

    assert result["outcome"] == "patched"
    assert result["refused"] == {"case_status": "stale"}
    assert stored(context_box) == {"case_status": "closed", "case_priority": "high"}
    after = requests_made(context_box)
    assert after[CALL_GET] - before.get(CALL_GET, 0) == 1  # the rare path's read
    assert after[CALL_PATCH] - before.get(CALL_PATCH, 0) == 1


def test_an_api_write_after_the_fetch_is_not_overwritten(context_box: Sandbox) -> None:
    seed_call(context_box)
    resolved = resolved_by_the_chain(context_box)
    time.sleep(0.01)
    api_write = sample("app-update-requested.json")
    api_write["detail"].update(
        conversationId=CALL,
        participantId=CUSTOMER,
        mediaType="VOICE",
        attributes={"case_status": "escalated"},
        readAtMs=int(time.time() * 1000),
    )
    assert context_box.invoke("PatchAttributesFunction", api_write)["outcome"] == "patched"

    result = context_box.invoke("PatchAttributesFunction", resolved)  # overtaken: compares

    assert result["refused"] == {"case_status": "stale"}
    assert stored(context_box) == {"case_status": "escalated", "case_priority": "high"}


# ---- loops and the per-conversation cap -----------------------------------------------


def test_the_echo_of_our_own_patch_ends_the_chain_even_with_a_changing_answer(
    context_box: Sandbox,
) -> None:
    seed_call(context_box)
    context_box.external.answer_always('{"attributes": {"crm_synced_at": "{now}"}}')

    run = run_chain(context_box, customer_start(), echo_rounds=10)

    assert run.echoes == 1 and not run.echo_stopped
    assert outcomes(run)[-1] == "no_change"  # the `attributes` event: no input, no sync
    assert len(context_box.external.received) == 1
    assert requests_made(context_box) == {CALL_PATCH: 1}  # the echo needed no read either


def test_the_per_conversation_sync_cap_still_counts() -> None:
    overrides = {**CONTEXT_ONLY, "MaxSyncsPerConversation": "1"}
    with sandbox(parameter_overrides=overrides) as box:
        transfer = "c1d3e5f7-0a2b-4c6d-8e0f-1a3b5c7d9e0f"  # a second customer leg
        box.emulator.create_conversation(
            media_type="VOICE",
            conversation_id=CALL,
            participants=[
                {"purpose": "customer", "id": CUSTOMER},
                {"purpose": "customer", "id": transfer},
            ],
        )
        box.external.add_rule(match={"context": {"ani": ANI}}, answer=dict(CRM_ANSWER))
        second = copy.deepcopy(customer_start())
        second["id"] = "2c0a4f6e-8b1d-4c3e-9f5a-7d2b4e6c8a10"
        second["detail"]["eventBody"]["participantId"] = transfer

        run_chain(box, customer_start())
        run = run_chain(box, second)

        assert [step.reason[:8] for step in run.steps][-1] == "sync cap"
        assert len(box.external.received) == 1


# ---- configuration ---------------------------------------------------------------------


def test_context_only_with_input_attributes_is_a_configuration_error_at_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    overrides = {"FetchMode": "context-only", "SyncAllowedAttributes": "case_id"}
    with sandbox(parameter_overrides=overrides) as box:
        seed_call(box)

        result = box.invoke("FetchAttributesFunction", customer_start())  # not retried

        assert result["outcome"] == "failed"
        assert "SyncAllowedAttributes names case_id" in result["error"]
        (letter,) = box.dead_letters("FetchAttributesFunction")
        assert json.loads(letter)["deadLetter"]["reason"] == "failed"
        assert requests_made(box) == {}
    assert '"ConfigurationError":[1.0]' in capfd.readouterr().err


def test_the_localdev_pipeline_runs_the_mode_from_the_templates_environment(
    tmp_path: Path,
) -> None:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(
        json.dumps({"Parameters": {"SYNC_ALLOWED_ATTRIBUTES": "", "SYNC_CONTEXT_FIELDS": "ani"}})
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "localdev",
            "pipeline",
            str(EVENTS / "genesys-voice-customer-start.json"),
            "--env-vars",
            str(env_vars),
        ],
        cwd=EVENTS.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    output = json.loads(done.stdout)

    assert [step["outcome"] for step in output["steps"]] == ["fetched", "synced", "patched"]
    assert output["requests"] == {CALL_PATCH: 1, "POST /oauth/token": 1}
    assert output["attributes"][CUSTOMER]["case_status"] == "open"
