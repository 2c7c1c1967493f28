"""Who may write what into a live conversation, tried as an attacker or an unlucky
operator would: forged events put straight into PatchAttributes, an API consumer writing
keys or participants it must not, a CRM answering keys nobody allowed, events carrying more
customer data than the next step needs, stale writes and write -> event -> sync loops.

The real handlers from template.yaml, the emulator over HTTP, the stub, moto (the sandbox)."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from localdev.runner import run_chain
from localdev.sandbox import Sandbox
from tests.conftest import genesys_write as shared_genesys_write
from tests.integration.test_attributes_api import api_event, call, patch_body

EVENTS = Path(__file__).resolve().parents[2] / "events"
CALL = "6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b"
CUSTOMER = "0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"
AGENT = "7c9e1a3b-5d7f-4b9a-8c2e-4f6a8b0c2d4e"
PATCH_ROUTE = "PATCH /api/v2/conversations/calls/{id}/participants/{pid}/attributes"
SECRET_ATTRIBUTES = {"ssn_last4": "SSN-LAST4-SECRET", "dob": "DOB-SECRET-1980"}


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def seed_call(box: Sandbox, customer: dict[str, str] | None = None) -> None:
    box.emulator.create_conversation(
        media_type="VOICE",
        conversation_id=CALL,
        participants=[
            {
                "purpose": "customer",
                "id": CUSTOMER,
                "attributes": {"case_id": "CASE-1001", **SECRET_ATTRIBUTES, **(customer or {})},
            },
            {"purpose": "agent", "id": AGENT, "attributes": {"agent_note": "private"}},
        ],
    )


def resolved(
    attributes: dict[str, str],
    participant: str = CUSTOMER,
    based_on: dict[str, str | None] | None = None,
    read_at_ms: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    event = sample("app-attributes-resolved.json")
    event["detail"].update(
        participantId=participant,
        attributes=attributes,
        basedOn=based_on or {},
        readAtMs=int(time.time() * 1000) if read_at_ms is None else read_at_ms,
        **extra,
    )
    return event


def stored(box: Sandbox, participant: str = CUSTOMER) -> dict[str, str]:
    return box.emulator.participant_attributes(CALL, participant)


def patches(box: Sandbox) -> int:
    return int(box.emulator.counters()["requests"].get(PATCH_ROUTE, 0))


# ---- writers and keys: PatchAttributes ------------------------------------------------


def test_a_forged_update_put_straight_into_patch_writes_only_writable_keys(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    seed_call(box)
    forged = resolved(
        {"customer_authenticated": "true", "fraud_flag": "cleared", "crm_tier": "gold"},
    )

    result = box.invoke("PatchAttributesFunction", forged)

    assert result["outcome"] == "patched"
    assert result["refused"] == {
        "customer_authenticated": "not writable",
        "fraud_flag": "not writable",
    }
    assert "customer_authenticated" not in stored(box) and "fraud_flag" not in stored(box)
    assert stored(box)["crm_tier"] == "gold"
    logs = capfd.readouterr().err
    assert '"AttributeRefused":[2.0]' in logs and "Keys not written" in logs
    assert "cleared" not in logs  # names in the log, never values


def test_a_write_to_an_agent_participant_is_refused_and_nothing_is_written(
    box: Sandbox,
) -> None:
    seed_call(box)

    result = box.invoke("PatchAttributesFunction", resolved({"crm_tier": "gold"}, AGENT))

    assert result["outcome"] == "refused"
    assert "purpose" in result["reason"]
    assert stored(box, AGENT) == {"agent_note": "private"}
    assert patches(box) == 0


def test_the_audit_event_names_the_keys_written_never_their_values(box: Sandbox) -> None:
    seed_call(box)

    box.invoke("PatchAttributesFunction", resolved({"crm_tier": "gold", "dob": "x"}))

    (audit,) = box.emitted_events()
    assert audit["detail-type"] == "ParticipantAttributesPatched"
    assert audit["detail"]["writtenKeys"] == ["crm_tier"]
    assert audit["detail"]["refused"] == {"dob": "not writable"}
    assert "gold" not in json.dumps(audit)


def test_the_normal_write_costs_no_genesys_read_once_the_customer_was_seen(
    box: Sandbox,
) -> None:
    seed_call(box)
    run_chain(box, sample("genesys-voice-customer-start.json"))
    reads_before = box.emulator.counters()["requests"]["GET /api/v2/conversations/calls/{id}"]

    box.invoke("PatchAttributesFunction", resolved({"crm_tier": "gold"}))

    after = box.emulator.counters()["requests"]
    assert after["GET /api/v2/conversations/calls/{id}"] == reads_before == 1
    assert after[PATCH_ROUTE] == 2


# ---- keys: the external system's answer -----------------------------------------------


def test_an_answer_with_a_non_writable_key_writes_the_others_and_reports_that_one(
    box: Sandbox,
) -> None:
    seed_call(box)
    box.external.answer_always(
        json.dumps({"attributes": {"case_status": "open", "customer_authenticated": "true"}})
    )

    run = run_chain(box, sample("genesys-voice-customer-start.json"))

    sync = next(step for step in run.steps if step.function == "SyncExternalFunction")
    assert sync.result["refused"] == {"customer_authenticated": "not writable"}
    assert stored(box)["case_status"] == "open"
    assert "customer_authenticated" not in stored(box)


# ---- consumers: customer data only where the next step needs it -----------------------


def test_the_fetched_event_holds_only_allow_listed_inputs_and_writable_keys(
    box: Sandbox,
) -> None:
    seed_call(box, {"case_status": "pending"})

    box.invoke("FetchAttributesFunction", sample("genesys-voice-customer-start.json"))

    (fetched,) = box.emitted_events()
    assert fetched["detail"]["attributes"] == {"case_id": "CASE-1001"}
    assert fetched["detail"]["basedOn"] == {"case_status": "pending"}
    for secret in (*SECRET_ATTRIBUTES, *SECRET_ATTRIBUTES.values()):
        assert secret not in json.dumps(fetched)


def test_dead_letters_of_the_chain_hold_no_key_outside_the_allow_lists(box: Sandbox) -> None:
    seed_call(box)
    box.external.fail_next("401", count=5)  # the CRM refuses our credentials: dead-lettered

    run = run_chain(box, sample("genesys-voice-customer-start.json"))

    assert [step.outcome for step in run.steps] == ["fetched", "failed"]
    (letter,) = box.dead_letters("SyncExternalFunction")
    for secret in (*SECRET_ATTRIBUTES, *SECRET_ATTRIBUTES.values()):
        assert secret not in letter


# ---- participants ---------------------------------------------------------------------


def attributes_event(participant: str, attributes: dict[str, str]) -> dict[str, Any]:
    event = sample("genesys-voice-attributes-update.json")
    event["id"] = f"{event['id'][:-4]}{len(attributes):04d}"
    event["detail"]["eventBody"].update(
        participantId=participant,
        attributes=attributes,
        eventTime=int(time.time() * 1000),
    )
    return event


def genesys_write(box: Sandbox, attributes: dict[str, str]) -> None:
    """Someone else's write to this file's customer (tests.conftest.genesys_write)."""
    shared_genesys_write(box, CALL, CUSTOMER, attributes)


def test_an_attributes_event_of_an_agent_triggers_no_sync(box: Sandbox) -> None:
    seed_call(box)

    run = run_chain(box, attributes_event(AGENT, {"agent_note": "x", "case_id": "CASE-9"}))

    assert [(step.function, step.outcome) for step in run.steps] == [
        ("FetchAttributesFunction", "dropped")
    ]
    assert box.external.received == []


def test_an_attributes_event_of_a_known_customer_costs_no_genesys_read(box: Sandbox) -> None:
    seed_call(box)
    run_chain(box, sample("genesys-voice-customer-start.json"))
    requests_before = dict(box.emulator.counters()["requests"])

    run = run_chain(box, attributes_event(CUSTOMER, {"case_id": "CASE-2002"}))

    assert run.steps[0].outcome == "fetched"
    after = box.emulator.counters()["requests"]
    get = "GET /api/v2/conversations/calls/{id}"
    assert after[get] == requests_before[get] == 1


# ---- the API: consumers writing -------------------------------------------------------


def test_api_patch_of_a_non_writable_key_is_403_and_writes_nothing(box: Sandbox) -> None:
    seed_call(box)

    answer = call(
        box,
        api_event(
            "patch-attributes",
            CALL,
            CUSTOMER,
            patch_body({"crm_tier": "gold", "customer_authenticated": "true"}),
        ),
    )

    assert answer.status == 403
    assert answer.body["errors"] == ["customer_authenticated: not writable"]
    assert patches(box) == 0 and "crm_tier" not in stored(box)


def test_api_patch_to_an_agent_is_403_and_writes_nothing(box: Sandbox) -> None:
    seed_call(box)

    answer = call(box, api_event("patch-attributes", CALL, AGENT, patch_body({"crm_tier": "gold"})))

    assert answer.status == 403 and "purpose" in answer.body["errors"][0]
    assert stored(box, AGENT) == {"agent_note": "private"}


@pytest.mark.parametrize("key", ["crm_a\u0000", "crm_a\nb", "crm_\u200bx", " crm_a"])
def test_api_patch_of_a_key_outside_the_pattern_is_refused(box: Sandbox, key: str) -> None:
    seed_call(box)

    answer = call(box, api_event("patch-attributes", CALL, CUSTOMER, patch_body({key: "v"})))

    assert answer.status in (400, 403)
    assert patches(box) == 0


def test_api_get_answers_readable_keys_only(box: Sandbox) -> None:
    seed_call(box, {"crm_tier": "gold"})

    customer = call(box, api_event("get-attributes", CALL, CUSTOMER, content_type=None))
    agent = call(box, api_event("get-attributes", CALL, AGENT, content_type=None))

    assert customer.status == 200
    assert customer.body["attributes"] == {"case_id": "CASE-1001", "crm_tier": "gold"}
    assert agent.body["attributes"] == {}


def test_api_queued_write_goes_through_patch_attributes_and_its_rules(box: Sandbox) -> None:
    seed_call(box)
    event = api_event("patch-attributes", CALL, CUSTOMER, patch_body({"crm_tier": "gold"}))
    event["headers"]["Prefer"] = "respond-async"

    answer = call(box, event)
    (queued,) = box.emitted_events()
    applied = box.invoke("PatchAttributesFunction", queued)

    assert answer.status == 202 and answer.body["status"] == "queued"
    assert queued["detail-type"] == "ParticipantAttributesUpdateRequested"
    assert applied["outcome"] == "patched" and stored(box)["crm_tier"] == "gold"


@pytest.mark.parametrize(
    ("participant", "attributes", "status"),
    [
        (CUSTOMER, {"crm_tier": "gold", "dob": "x"}, 403),  # one key not writable
        (CUSTOMER, {"crm_\u0000": "x"}, 400),  # not a valid key
        (AGENT, {"crm_tier": "gold"}, 403),  # an agent, known from an earlier read
    ],
)
def test_api_queued_write_is_refused_at_once_and_nothing_is_queued(
    box: Sandbox, participant: str, attributes: dict[str, str], status: int
) -> None:
    seed_call(box)
    run_chain(box, sample("genesys-voice-customer-start.json"))  # the call was seen
    box.emitted_events()
    event = api_event("patch-attributes", CALL, participant, patch_body(attributes))
    event["headers"]["Prefer"] = "respond-async"

    answer = call(box, event)

    assert answer.status == status
    assert box.emitted_events() == []  # nothing on the bus, nothing in the archive


# ---- the API: bad input at the edge ---------------------------------------------------


def test_a_deeply_nested_body_is_400_not_500(box: Sandbox) -> None:
    seed_call(box)
    body = '{"attributes": ' + "[" * 5000 + "]" * 5000 + "}"

    answer = call(box, api_event("patch-attributes", CALL, CUSTOMER, body))

    assert answer.status == 400 and "deeper" in answer.body["errors"][0]


def test_content_type_matches_case_insensitively(box: Sandbox) -> None:
    seed_call(box)
    event = api_event(
        "patch-attributes",
        CALL,
        CUSTOMER,
        patch_body({"crm_tier": "gold"}),
        content_type="Application/JSON; charset=utf-8",
    )

    assert call(box, event).status == 200
    assert stored(box)["crm_tier"] == "gold"


def test_a_body_over_the_limit_is_413(box: Sandbox) -> None:
    seed_call(box)
    body = patch_body({"crm_tier": "x" * 600_000})

    answer = call(box, api_event("patch-attributes", CALL, CUSTOMER, body))

    assert answer.status == 413


@pytest.mark.parametrize(
    "event_name", ["app-attributes-resolved.json", "schedule-token-refresh.json"]
)
def test_a_non_api_event_given_to_the_api_function_is_a_clean_rejection(
    box: Sandbox, event_name: str
) -> None:
    answer = call(box, sample(event_name))

    assert answer.status == 400
    assert answer.body["errors"] == ["not an API Gateway proxy event"]


# ---- no stale write (issue 11) --------------------------------------------------------


def test_a_read_time_from_the_future_neither_skips_the_guard_nor_locks_out_later_writes(
    box: Sandbox,
) -> None:
    seed_call(box, {"crm_tier": "platinum"})
    ten_years = int(time.time() * 1000) + 10 * 365 * 24 * 3600 * 1000
    forged = resolved({"crm_tier": "gold"}, based_on={"crm_tier": "silver"}, read_at_ms=ten_years)
    box.invoke("PatchAttributesFunction", forged)  # written (as a write "now" would be)

    later = call(
        box, api_event("patch-attributes", CALL, CUSTOMER, patch_body({"crm_tier": "vip"}))
    )

    assert later.status == 200 and stored(box)["crm_tier"] == "vip"


def test_a_late_write_whose_base_is_still_current_is_written(box: Sandbox) -> None:
    seed_call(box, {"crm_tier": "silver"})
    late = resolved({"crm_tier": "gold"}, based_on={"crm_tier": "silver"}, read_at_ms=1)

    assert box.invoke("PatchAttributesFunction", late)["outcome"] == "patched"
    assert stored(box)["crm_tier"] == "gold"


def test_a_late_write_over_a_newer_value_is_skipped_as_stale(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    seed_call(box, {"crm_tier": "platinum"})  # someone wrote it after our read
    late = resolved({"crm_tier": "gold"}, based_on={"crm_tier": "silver"}, read_at_ms=1)

    result = box.invoke("PatchAttributesFunction", late)

    assert result["outcome"] == "stale" and result["refused"] == {"crm_tier": "stale"}
    assert stored(box)["crm_tier"] == "platinum" and patches(box) == 0
    assert '"StaleSkipped":[1.0]' in capfd.readouterr().err


def test_a_replayed_write_is_compared_and_set_even_when_fresh(box: Sandbox) -> None:
    seed_call(box, {"crm_tier": "platinum"})

    result = box.invoke(
        "PatchAttributesFunction",
        resolved({"crm_tier": "gold"}, based_on={"crm_tier": "silver"}, replay=True),
    )

    assert result["outcome"] == "stale" and stored(box)["crm_tier"] == "platinum"


def test_a_newer_write_between_fetch_and_patch_is_kept(box: Sandbox) -> None:
    seed_call(box, {"crm_tier": "silver"})
    box.invoke("FetchAttributesFunction", sample("genesys-voice-customer-start.json"))
    (fetched,) = box.emitted_events()
    read_at = fetched["detail"]["readAtMs"]
    time.sleep(0.01)
    # an external system writes through the API after our read...
    call(box, api_event("patch-attributes", CALL, CUSTOMER, patch_body({"crm_tier": "vip"})))
    # ... then the chain's write, based on that read, arrives within MaxWriteDelaySeconds
    chain_write = resolved(
        {"crm_tier": "gold"}, based_on={"crm_tier": "silver"}, read_at_ms=read_at
    )

    result = box.invoke("PatchAttributesFunction", chain_write)

    assert result["outcome"] == "stale"
    assert stored(box)["crm_tier"] == "vip"


# ---- no loops (issue 11) --------------------------------------------------------------


def test_a_volatile_answer_ends_after_one_extra_patch(box: Sandbox) -> None:
    seed_call(box)
    box.external.answer_always('{"attributes": {"crm_synced_at": "{now}"}}')

    run = run_chain(box, sample("genesys-voice-customer-start.json"), echo_rounds=10)

    assert patches(box) == 1
    assert len(box.external.received) == 1
    assert run.echoes == 1 and not run.echo_stopped
    assert run.steps[-1].outcome == "no_change"


def test_an_input_change_syncs_again_once(box: Sandbox) -> None:
    seed_call(box)
    box.external.answer_always('{"attributes": {"crm_synced_at": "{now}"}}')
    run_chain(box, sample("genesys-voice-customer-start.json"), echo_rounds=10)

    # the customer's case changes (a flow sets it, straight through Genesys's API): Genesys
    # reports it; one more sync and one more write, then quiet again
    genesys_write(box, {"case_id": "CASE-2002"})
    run_chain(box, attributes_event(CUSTOMER, stored(box)), echo_rounds=10)

    assert len(box.external.received) == 2 and patches(box) == 2


def test_the_per_conversation_cap_stops_what_still_escapes(
    box: Sandbox, capfd: pytest.CaptureFixture[str]
) -> None:
    box.env_overrides["SyncExternalFunction"] = {"MAX_SYNCS_PER_CONVERSATION": "2"}
    seed_call(box)
    fetched = sample("app-attributes-fetched.json")
    outcomes = []
    for n in range(3):
        event = copy.deepcopy(fetched)
        event["id"] = f"{event['id'][:-1]}{n}"
        event["detail"]["attributes"] = {"case_id": f"CASE-{n}"}
        outcomes.append(box.invoke("SyncExternalFunction", event)["outcome"])

    assert outcomes[2] == "dropped"
    assert len(box.external.received) == 2
    logs = capfd.readouterr().err
    assert "MaxSyncsPerConversation" in logs and '"SyncCapReached":[1.0]' in logs


def test_a_dead_lettered_genesys_event_keeps_only_the_allow_listed_attributes(
    box: Sandbox,
) -> None:
    seed_call(box)
    event = attributes_event(CUSTOMER, {"case_id": "CASE-1", **SECRET_ATTRIBUTES})
    event["detail"]["eventBody"]["conversationId"] = "not-a-uuid"  # rejected: dead-lettered

    assert box.invoke("FetchAttributesFunction", event)["outcome"] == "rejected"

    (letter,) = box.dead_letters("FetchAttributesFunction")
    kept = json.loads(letter)["event"]["detail"]["eventBody"]["attributes"]
    assert kept == {"case_id": "CASE-1"}


def test_a_crm_answer_that_flips_between_two_values_is_not_asked_again(box: Sandbox) -> None:
    seed_call(box)
    box.external.answer_always('{"attributes": {"crm_flag": "A"}}')
    run_chain(box, sample("genesys-voice-customer-start.json"), echo_rounds=10)
    box.external.answer_always('{"attributes": {"crm_flag": "B"}}')  # it would flip now

    # Genesys reports the write again (a redelivery, a later flow change of another key)
    run = run_chain(box, attributes_event(CUSTOMER, stored(box)), echo_rounds=10)

    assert [step.outcome for step in run.steps] == ["no_change"]  # inputs unchanged
    assert len(box.external.received) == 1 and patches(box) == 1
    assert stored(box)["crm_flag"] == "A"


def test_an_allow_list_that_would_loop_is_a_configuration_error_dead_lettered_at_once(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from localdev.sandbox import sandbox

    with sandbox(env_overrides={"Parameters": {"WRITABLE_ATTRIBUTES": "case_*"}}) as stack:
        event = sample("genesys-voice-customer-start.json")
        stack.ensure_conversation(event)

        result = stack.invoke("FetchAttributesFunction", event)  # raises nothing: not retried

        assert result["outcome"] == "failed"
        assert "share case_id" in result["error"]
        (letter,) = stack.dead_letters("FetchAttributesFunction")
        assert json.loads(letter)["deadLetter"]["reason"] == "failed"
    assert '"ConfigurationError":[1.0]' in capfd.readouterr().err
