"""The shipped Genesys data actions (genesys/data-actions/*.json), run the way Genesys runs
them: the request rendered from the action's templates (localdev.data_actions: airspeed,
jsonpath-ng, jsonschema), sent to the real function (the Lambda action: the rendered body
is the event) or to the API (the web action: an API Gateway proxy event), the response
translated into the output contract and validated. Genesys emulator, external stub and
moto as everywhere else."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from attribute_bridge import resolve, use_cases
from attribute_bridge.errors import ConfigurationError

from localdev.data_actions import (
    Request,
    TranslationError,
    contract_problems,
    load_action,
    render_request,
    translate,
    translation_values,
)
from localdev.runner import run_chain
from localdev.sandbox import Sandbox, sandbox

REPO = Path(__file__).resolve().parents[2]
ACTIONS = REPO / "genesys" / "data-actions"
LAMBDA_ACTION = load_action(ACTIONS / "resolve-attributes-lambda.json")
WEB_ACTION = load_action(ACTIONS / "resolve-attributes-web.json")
REFERENCE = REPO / "tests" / "data" / "data-actions"  # copied from /work/shared (README)
EVENTS = REPO / "events"
CREDENTIALS = {"apiBaseUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/dev"}
API_KEY = "local-demo-api-key"  # what the credential's apiKey field would hold
ANSWER = {"case_status": "open", "case_priority": "high"}
HOSTILE = [
    'quote " and \\" escaped',
    "back\\slash \\n not a newline",
    "new\nline\r\ttab",
    "unicode ü 東京 🎉 \u2028",
    '#end $input.conversationId ${esc} "}, "write": true, "x": "',
    "\u0000nul",
]


@pytest.fixture
def box() -> Iterator[Sandbox]:
    with sandbox(parameter_overrides={"SyncContextFields": "ani,dnis,addressFrom"}) as stack:
        yield stack


@pytest.fixture
def call(box: Sandbox) -> dict[str, str]:
    conversation = box.emulator.create_conversation(
        media_type="VOICE",
        participants=[
            {"purpose": "customer", "attributes": {"case_id": "CASE-7", "private": "x"}},
            {"purpose": "ivr"},
        ],
    )
    box.external.add_rule(match={"conversationId": conversation["id"]}, answer=dict(ANSWER))
    return {"conversationId": conversation["id"], "customer": conversation["participants"][0]["id"]}


# ---------------------------------------------------------------------------- run an action


def run_lambda_action(box: Sandbox, inputs: dict[str, Any]) -> dict[str, Any]:
    """Genesys's part and the function's: render, invoke, translate, validate."""
    request = render_request(LAMBDA_ACTION, inputs, {})
    event = json.loads(request.body)  # Lambda data actions: the request body is the event
    answer = box.invoke("ResolveAttributesFunction", event)
    return translate(LAMBDA_ACTION, json.dumps(answer))


def api_event(request: Request) -> dict[str, Any]:
    """The rendered web request as API Gateway hands it to the function."""
    event: dict[str, Any] = json.loads((EVENTS / "api-post-sync.json").read_text())
    url = urlsplit(request.url)
    base = urlsplit(CREDENTIALS["apiBaseUrl"])
    assert (url.scheme, url.netloc) == (base.scheme, base.netloc)
    assert url.path.startswith(base.path + "/conversations/") and url.path.endswith("/resolve")
    conversation_id = unquote(
        url.path.removeprefix(base.path + "/conversations/")[: -len("/resolve")]
    )
    event["resource"] = event["requestContext"]["resourcePath"] = (
        "/conversations/{conversationId}/resolve"
    )
    event["path"] = url.path.removeprefix(base.path)
    event["requestContext"]["path"] = url.path
    event["httpMethod"] = event["requestContext"]["httpMethod"] = request.method
    event["pathParameters"] = {"conversationId": conversation_id}
    event["headers"] = dict(request.headers)
    event["multiValueHeaders"] = {k: [v] for k, v in request.headers.items()}
    event["body"] = request.body
    return event


def run_web_action(box: Sandbox, inputs: dict[str, Any]) -> dict[str, Any]:
    request = render_request(WEB_ACTION, inputs, {**CREDENTIALS, "apiKey": API_KEY})
    assert request.headers["x-api-key"] == API_KEY  # from the credential, not the action
    json.loads(request.body)  # Genesys sends what its template made: it must be JSON
    result = box.invoke("AttributesApiFunction", api_event(request))
    if not 200 <= result["statusCode"] < 300:
        raise TranslationError(f"HTTP {result['statusCode']}: Architect takes Failure")
    return translate(WEB_ACTION, result["body"])


RUNNERS = {"lambda": run_lambda_action, "web": run_web_action}


def attributes_of(output: dict[str, Any]) -> dict[str, str]:
    parsed: dict[str, str] = json.loads(output["attributesJson"])
    assert output["attributeCount"] == len(parsed)
    return parsed


# ---------------------------------------------------------------------------- format


@pytest.mark.parametrize("action", [LAMBDA_ACTION, WEB_ACTION], ids=["lambda", "web"])
def test_shipped_action_is_in_the_export_format_and_keeps_the_contract_rules(
    action: dict[str, Any],
) -> None:
    assert contract_problems(action) == []
    outputs = action["contract"]["output"]["successSchema"]
    assert tuple(outputs["properties"]) == resolve.OUTPUT_KEYS
    assert set(outputs["required"]) == set(resolve.OUTPUT_KEYS)
    inputs = action["contract"]["input"]["inputSchema"]
    assert inputs["required"] == ["conversationId"]
    # every declared input means something to the function (known field or default allow-list)
    assert set(inputs["properties"]) <= resolve.KNOWN_INPUTS | {"case_id", "account_id"}


def test_the_two_actions_share_one_contract_and_one_response_translation() -> None:
    assert LAMBDA_ACTION["contract"] == WEB_ACTION["contract"]
    assert LAMBDA_ACTION["config"]["response"] == WEB_ACTION["config"]["response"]
    assert LAMBDA_ACTION["integrationType"] == "aws-lambda-data-actions"
    assert WEB_ACTION["integrationType"] == "custom-rest-actions"
    # Lambda: the ARN is the URL and Genesys's default template passes the input as is
    assert LAMBDA_ACTION["config"]["request"]["requestUrlTemplate"].startswith("arn:aws:lambda:")
    assert LAMBDA_ACTION["config"]["request"]["requestTemplate"] == "${input.rawRequest}"
    # Web: no secret in the action, only credential fields
    request = WEB_ACTION["config"]["request"]
    assert "${credentials.apiKey}" in request["headers"]["x-api-key"]
    assert API_KEY not in json.dumps(WEB_ACTION)


def test_the_contract_checker_finds_what_genesys_refuses() -> None:
    broken = copy.deepcopy(LAMBDA_ACTION)
    properties = broken["contract"]["input"]["inputSchema"]["properties"]
    properties["rawRequest"] = {"type": "string"}
    properties["1bad name"] = {"type": "string"}
    properties["nested"] = {"type": "object", "properties": {}}
    outputs = broken["contract"]["output"]["successSchema"]["properties"]
    outputs["grid"] = {"type": "array", "items": {"type": "array"}}

    problems = contract_problems(broken)

    assert len(problems) == 4, problems
    assert any("reserved" in p for p in problems)
    assert any("nested array" in p for p in problems)


def test_the_local_genesys_renders_and_translates_genesys_own_exports() -> None:
    counts = load_action(REFERENCE / "Get-On-Queue-Agent-Counts.json")
    request = render_request(counts, {"queueId": "q1"}, {})
    assert json.loads(request.body)["filter"]["predicates"][0]["value"] == "q1"

    answer = {"results": [{"data": [{"qualifier": "IDLE", "stats": {"count": 3}}]}]}
    assert translate(counts, json.dumps(answer)) == {"counts": [3], "statuses": ["IDLE"]}
    # nothing matched: the defaults, JSON text, go into the success template
    assert translate(counts, json.dumps({"results": [{"data": []}]})) == {
        "counts": [0],
        "statuses": ["Error"],
    }
    setter = load_action(REFERENCE / "Set-Participant-Attribute.json")
    request = render_request(setter, {"conversationId": "c", "participantId": "p", "key": "k"}, {})
    assert request.url == "/api/v2/conversations/c/participants/p/attributes"
    assert json.loads(request.body) == {"attributes": {"k": ""}}  # $!{} prints nothing


def test_the_reference_template_breaks_on_a_quote_which_ours_escape() -> None:
    counts = load_action(REFERENCE / "Get-On-Queue-Agent-Counts.json")
    # ${input.queueId} is not escaped: one quote and Genesys would send invalid JSON
    with pytest.raises(ValueError):
        json.loads(render_request(counts, {"queueId": 'a"b'}, {}).body)
    ours = render_request(WEB_ACTION, {"conversationId": "c", "ani": 'a"b'}, CREDENTIALS)
    assert json.loads(ours.body)["ani"] == 'a"b'


def test_a_missing_required_output_is_a_translation_error_and_an_optional_one_defaults() -> None:
    good = {key: "" for key in resolve.OUTPUT_KEYS} | {
        "ok": True,
        "attributeCount": 0,
        "written": False,
        "attributesJson": "{}",
    }
    older = {k: v for k, v in good.items() if k != "rejectedKeys"}
    assert translate(LAMBDA_ACTION, json.dumps(older))["rejectedKeys"] == ""

    for key in ("ok", "status", "attributesJson"):
        with pytest.raises(TranslationError):
            translate(LAMBDA_ACTION, json.dumps({k: v for k, v in good.items() if k != key}))
    with pytest.raises(TranslationError):  # a null never falls back to a default
        translate(LAMBDA_ACTION, json.dumps(good | {"status": None}))
    assert translation_values(LAMBDA_ACTION["config"]["response"], json.dumps(good))["ok"] == "true"


# ---------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("kind", ["lambda", "web"])
def test_the_action_returns_the_crms_answer_in_the_contract_and_writes_it(
    box: Sandbox, call: dict[str, str], kind: str
) -> None:
    started = time.monotonic()
    output = RUNNERS[kind](
        box, {"conversationId": call["conversationId"], "ani": "tel:+13175550123", "write": True}
    )

    assert time.monotonic() - started < 4.0  # well inside the default budget
    assert output["ok"] is True and output["status"] == "written", output
    assert output["errorCode"] == "" and output["written"] is True
    assert attributes_of(output) == ANSWER
    assert output["participantId"] == call["customer"]
    assert output["writtenKeys"] == "case_priority,case_status"
    assert box.emulator.participant_attributes(call["conversationId"], call["customer"]) == {
        "case_id": "CASE-7",
        "private": "x",
        **ANSWER,
    }
    sent = box.external.received[-1]
    assert sent["attributes"] == {"case_id": "CASE-7"}  # the allow-list: never `private`
    assert sent["context"] == {"ani": "tel:+13175550123"}


@pytest.mark.parametrize("kind", ["lambda", "web"])
def test_without_write_nothing_is_written_and_genesys_is_not_called_when_ids_are_known(
    box: Sandbox, call: dict[str, str], kind: str
) -> None:
    before = dict(box.emulator.counters()["requests"])
    output = RUNNERS[kind](
        box,
        {"conversationId": call["conversationId"], "participantId": call["customer"]},
    )

    assert output["status"] == "resolved" and output["written"] is False
    assert attributes_of(output) == ANSWER
    calls = {
        route: n - before.get(route, 0)
        for route, n in box.emulator.counters()["requests"].items()
        if route.startswith(("GET /api", "PATCH /api")) and n != before.get(route, 0)
    }
    assert calls == {}
    assert "case_status" not in box.emulator.participant_attributes(
        call["conversationId"], call["customer"]
    )


def test_a_write_goes_through_the_one_write_path(
    box: Sandbox, call: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, str]] = []
    real = use_cases.patch_attributes

    def recording(request: Any, *args: Any) -> Any:
        seen.append(dict(request.attributes))
        return real(request, *args)

    monkeypatch.setattr(use_cases, "patch_attributes", recording)
    output = run_lambda_action(box, {"conversationId": call["conversationId"], "write": True})

    assert output["written"] is True
    assert seen == [ANSWER]  # only the keys that change, through use_cases.patch_attributes


def test_a_second_identical_write_changes_nothing(box: Sandbox, call: dict[str, str]) -> None:
    inputs = {"conversationId": call["conversationId"], "write": True}
    assert run_lambda_action(box, inputs)["status"] == "written"

    again = run_lambda_action(box, inputs)

    assert again["status"] == "unchanged" and again["written"] is False and again["ok"] is True


def test_the_written_answer_is_announced_as_patched(box: Sandbox, call: dict[str, str]) -> None:
    box.emitted_events()
    run_lambda_action(box, {"conversationId": call["conversationId"], "write": True})

    (event,) = box.emitted_events()
    assert event["detail-type"] == "ParticipantAttributesPatched"
    assert event["detail"]["writtenKeys"] == sorted(ANSWER)
    assert "open" not in json.dumps(event)  # the audit names keys, never values


@pytest.mark.parametrize("kind", ["lambda", "web"])
@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_values_stay_valid_json_and_reach_the_crm_unchanged(
    box: Sandbox, call: dict[str, str], kind: str, value: str
) -> None:
    output = RUNNERS[kind](
        box,
        {"conversationId": call["conversationId"], "ani": value, "case_id": value},
    )

    assert output["ok"] is True, output
    sent = box.external.received[-1]
    assert sent["context"] == {"ani": value}
    assert sent["attributes"] == {"case_id": value}


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_answer_values_are_written_exactly_and_bad_keys_never(
    box: Sandbox, call: dict[str, str], value: str
) -> None:
    box.external.add_rule(
        match={"conversationId": call["conversationId"]},
        answer={"crm_note": value, "note": "x", "bad\nkey " + "k" * 300: "v", "list": ["a"]},
    )
    output = run_lambda_action(box, {"conversationId": call["conversationId"], "write": True})

    # the flow gets the whole usable answer; only WritableAttributes keys (crm_*) are written
    assert attributes_of(output) == {"crm_note": value, "note": "x"}
    assert output["rejectedKeys"].split(",") == sorted(["bad\nkey " + "k" * 56, "list"])
    written = box.emulator.participant_attributes(call["conversationId"], call["customer"])
    if "\u0000" in value:  # the write rules refuse control characters: nothing written
        assert (output["status"], output["errorCode"]) == ("write_failed", "WRITE_REFUSED")
        assert written == {"case_id": "CASE-7", "private": "x"}
        return
    assert (output["status"], output["writtenKeys"]) == ("written", "crm_note")
    assert "note" in output["errorMessage"]  # what the write rules kept back, by name
    assert written == {"case_id": "CASE-7", "private": "x", "crm_note": value}


@pytest.mark.parametrize("kind", ["lambda", "web"])
@pytest.mark.parametrize(
    ("inputs", "code"),
    [
        ({"conversationId": "../../users/me"}, "INVALID_INPUT"),
        ({"conversationId": "CONV", "participantId": "nope"}, "INVALID_INPUT"),
        ({"conversationId": "CONV", "mediaType": "FAX"}, "INVALID_INPUT"),
        ({"conversationId": "CONV", "ani": "x" * 300}, "INVALID_INPUT"),
        ({"conversationId": "0a0b0c0d-1e1f-4a2b-8c3d-4e5f6a7b8c9d"}, "NOT_FOUND"),
    ],
)
def test_bad_input_and_unknown_conversations_are_answers_the_flow_branches_on(
    box: Sandbox, call: dict[str, str], kind: str, inputs: dict[str, Any], code: str
) -> None:
    inputs = {k: (call["conversationId"] if v == "CONV" else v) for k, v in inputs.items()}
    before = len(box.external.received)

    output = RUNNERS[kind](box, inputs)

    assert output["ok"] is False and output["status"] == "failed"
    assert output["errorCode"] == code, output
    assert output["attributesJson"] == "{}" and output["written"] is False
    assert len(box.external.received) == before  # nothing left for the CRM


@pytest.mark.parametrize("kind", ["lambda", "web"])
def test_a_failing_crm_is_an_answer_not_a_hang(
    box: Sandbox, call: dict[str, str], kind: str
) -> None:
    box.external.fail_next("500", count=5)

    output = RUNNERS[kind](box, {"conversationId": call["conversationId"], "write": True})

    assert (output["ok"], output["errorCode"]) == (False, "EXTERNAL_UNAVAILABLE")
    assert "case_status" not in box.emulator.participant_attributes(
        call["conversationId"], call["customer"]
    )


def test_a_slow_crm_is_cut_off_at_the_budget(call: dict[str, str], box: Sandbox) -> None:
    box.env_overrides["ResolveAttributesFunction"] = {"RESOLVE_BUDGET_SECONDS": "1.5"}
    box.external.fail_next("slow", count=5, seconds=4.0)

    started = time.monotonic()
    output = run_lambda_action(box, {"conversationId": call["conversationId"]})
    took = time.monotonic() - started

    assert (output["ok"], output["errorCode"]) == (False, "TIMEOUT"), output
    assert took < 1.5 + 0.5, took


def test_a_crm_refusing_our_credentials_is_reported_as_configuration(
    box: Sandbox, call: dict[str, str]
) -> None:
    box.external.fail_next("401")

    output = run_lambda_action(box, {"conversationId": call["conversationId"]})

    assert (output["ok"], output["errorCode"]) == (False, "CONFIGURATION")


def test_an_unexpected_failure_raises_so_architect_takes_failure(
    box: Sandbox, call: dict[str, str]
) -> None:
    # a deployment whose mapping is not JSON: not an answer the flow could use
    box.env_overrides["ResolveAttributesFunction"] = {"ATTRIBUTE_MAPPING": "{not json"}
    event = json.loads(
        render_request(LAMBDA_ACTION, {"conversationId": call["conversationId"]}, {}).body
    )

    with pytest.raises(ConfigurationError):
        box.invoke("ResolveAttributesFunction", event)


def test_input_attributes_off_the_allow_list_never_leave(
    box: Sandbox, call: dict[str, str]
) -> None:
    output = run_lambda_action(
        box,
        {"conversationId": call["conversationId"], "account_id": "A-1", "ssn": "123-45-6789"},
    )

    assert output["ok"] is True
    sent = box.external.received[-1]
    assert sent["attributes"] == {"case_id": "CASE-7", "account_id": "A-1"}
    assert "123-45-6789" not in json.dumps(sent)


# ---------------------------------------------------------------------------- both paths


def test_the_crm_gets_the_same_payload_shape_from_the_chain_and_both_actions(
    box: Sandbox, call: dict[str, str]
) -> None:
    event = json.loads((EVENTS / "genesys-voice-customer-start.json").read_text())
    body = event["detail"]["eventBody"]
    body["conversationId"], body["participantId"] = call["conversationId"], call["customer"]
    event["detail"]["topicName"] = (
        f"v2.detail.events.conversation.{call['conversationId']}.customer.start"
    )
    run_chain(box, event)
    chain = box.external.received[-1]
    inputs = {"conversationId": call["conversationId"], "ani": body["ani"], "dnis": body["dnis"]}
    lambda_payload = (run_lambda_action(box, inputs), box.external.received[-1])[1]
    web_payload = (run_web_action(box, inputs), box.external.received[-1])[1]

    for payload in (lambda_payload, web_payload):
        assert set(payload) == set(chain)
        assert payload["context"] == chain["context"]
        assert payload["attributes"] == chain["attributes"]
    # the event's other fields (direction, addressTo...) are not on the allow-list
    assert chain["context"] == {"ani": body["ani"], "dnis": body["dnis"]}


def test_by_default_no_call_context_leaves() -> None:
    with sandbox() as default_box:
        conversation = default_box.emulator.create_conversation(
            media_type="VOICE", participants=[{"purpose": "customer"}, {"purpose": "ivr"}]
        )
        output = run_lambda_action(
            default_box, {"conversationId": conversation["id"], "ani": "tel:+13175550123"}
        )
        assert output["ok"] is True
        assert default_box.external.received[-1]["context"] == {}
