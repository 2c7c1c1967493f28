"""Bad input gets a clear answer.

Each event below is handed to the function EventBridge would give it to, in the sandbox
built from template.yaml (moto, the Genesys emulator over HTTP, the external stub). Every
one must be rejected with exactly one error log line naming the problem, a `Rejected`
metric, a message in the function's dead-letter queue with the reason, no call to Genesys
or to the external system, no event emitted, and no exception out of the handler.

(Most of these would not even pass the rules' patterns in template.yaml; a function must
not rely on that: the rules change, and `sam local invoke` / replays bypass them.)
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.config import Settings
from attribute_bridge.events import without_other_attributes
from attribute_bridge.write_rules import NameList

from localdev.sandbox import Sandbox, sandbox

EVENTS = Path(__file__).resolve().parents[2] / "events"
SERVICE = "participant-attributes"  # POWERTOOLS_SERVICE_NAME in template.yaml
FETCH, SYNC, PATCH = "FetchAttributesFunction", "SyncExternalFunction", "PatchAttributesFunction"
MEGABYTE = 1024 * 1024
TRIED: list[str] = []  # the case ids, for docs/RELIABILITY.md


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    event["id"] = str(uuid.uuid4())
    return event


def genesys(change: Callable[[dict[str, Any]], Any], name: str = "customer-start") -> Any:
    """A Genesys event (voice customer.start or attributes), changed by `change`: it edits
    the event in place, or returns something to use instead of the whole event."""
    file = {
        "customer-start": "genesys-voice-customer-start.json",
        "attributes": "genesys-voice-attributes-update.json",
    }[name]
    event = sample(file)
    replaced = change(event)
    return event if replaced is None else replaced


def app(change: Callable[[dict[str, Any]], Any], name: str = "app-attributes-resolved.json") -> Any:
    event = sample(name)
    replaced = change(event)
    return event if replaced is None else replaced


def body(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: event["detail"]["eventBody"].update(values)


def detail(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda event: event["detail"].update(values)


def without(*path: str) -> Callable[[dict[str, Any]], None]:
    def remove(event: dict[str, Any]) -> None:
        node = event
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return remove


def many_attributes(count: int, value: Any = "v") -> dict[str, Any]:
    return {f"key_{n:04d}": value for n in range(count)}


BAD_ID = "../../users/me"
# (case id, function, event, what the reason must say)
CASES: list[tuple[str, str, Any, str]] = [
    # --- the envelope
    ("event is null", FETCH, None, "event must be an object"),
    ("event is a list", FETCH, [], "event must be an object"),
    ("event is a string", PATCH, "{}", "event must be an object"),
    ("no detail", FETCH, genesys(without("detail")), "detail must be an object"),
    (
        "detail is a string",
        FETCH,
        genesys(lambda e: e.update(detail="x")),
        "detail must be an object",
    ),
    ("no eventBody", FETCH, genesys(without("detail", "eventBody")), "eventBody must be an object"),
    ("eventBody is a list", FETCH, genesys(detail(eventBody=[])), "eventBody must be an object"),
    ("no topicName", FETCH, genesys(without("detail", "topicName")), "topicName"),
    ("topicName is a number", FETCH, genesys(detail(topicName=7)), "topicName"),
    (
        "topic of another conversation",
        FETCH,
        genesys(body(conversationId=str(uuid.uuid4()))),
        "another conversation",
    ),
    # --- ids
    (
        "conversationId missing",
        FETCH,
        genesys(without("detail", "eventBody", "conversationId")),
        "conversationId must be a UUID",
    ),
    (
        "conversationId is a number",
        SYNC,
        app(detail(conversationId=12345), "app-attributes-fetched.json"),
        "conversationId must be a UUID",
    ),
    (
        "conversationId not a UUID",
        PATCH,
        app(detail(conversationId="abc")),
        "conversationId must be a UUID",
    ),
    (
        "conversationId ../../users/me",
        PATCH,
        app(detail(conversationId=BAD_ID)),
        "conversationId must be a UUID",
    ),
    (
        "participantId ../../users/me",
        FETCH,
        genesys(body(participantId=BAD_ID)),
        "participantId must be a UUID",
    ),
    (
        "participantId with ?",
        PATCH,
        app(detail(participantId="0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f?x=1")),
        "participantId must be a UUID",
    ),
    (
        "participantId with #",
        SYNC,
        app(
            detail(participantId="0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f#x"),
            "app-attributes-fetched.json",
        ),
        "participantId must be a UUID",
    ),
    (
        "participantId is a list",
        FETCH,
        genesys(body(participantId=["0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f"])),
        "participantId must be a UUID",
    ),
    (
        "sync request for ../../users/me",
        FETCH,
        app(detail(conversationId=BAD_ID), "app-sync-requested.json"),
        "conversationId must be a UUID",
    ),
    # --- media
    ("unknown mediaType", FETCH, genesys(body(mediaType="FAX")), "not a known Genesys media type"),
    ("mediaType is a number", FETCH, genesys(body(mediaType=3)), "not a known Genesys media type"),
    (
        "no mediaType at all",
        FETCH,
        genesys(without("detail", "eventBody", "mediaType")),
        "no mediaType",
    ),
    (
        "unknown media in communications",
        FETCH,
        genesys(
            lambda e: e["detail"]["eventBody"]["communications"][0].update(mediaType="PIGEON"),
            "attributes",
        ),
        "not a known Genesys media type",
    ),
    (
        "unknown mediaType in an app event",
        PATCH,
        app(detail(mediaType="TELEX")),
        "not a known Genesys media type",
    ),
    # --- attributes
    (
        "attributes is a list",
        PATCH,
        app(detail(attributes=["case_status", "open"])),
        "attributes must be an object",
    ),
    (
        "attributes missing",
        SYNC,
        app(without("detail", "attributes"), "app-attributes-fetched.json"),
        "attributes must be an object",
    ),
    (
        "non-string value (number)",
        PATCH,
        app(detail(attributes={"case_score": 42})),
        "'case_score' must be a string, got int",
    ),
    (
        "non-string value (null)",
        PATCH,
        app(detail(attributes={"case_owner": None})),
        "'case_owner' must be a string, got NoneType",
    ),
    (
        "non-string value (object)",
        FETCH,
        genesys(body(attributes={"case": {"id": 1}}), "attributes"),
        "'case' must be a string, got dict",
    ),
    (
        "empty attribute key",
        PATCH,
        app(detail(attributes={" ": "x"})),
        "must be a non-empty string",
    ),
    (
        "huge attribute map (5,000 keys)",
        FETCH,
        genesys(body(attributes=many_attributes(5000)), "attributes"),
        "5000 attributes, at most 500",
    ),
    (
        "1 MB attribute value",
        SYNC,
        app(detail(attributes={"blob": "x" * MEGABYTE}), "app-attributes-fetched.json"),
        "at most 8192 allowed",
    ),
    (
        "1 MB payload of many keys",
        FETCH,
        genesys(body(attributes=many_attributes(400, "y" * 2600)), "attributes"),
        "at most 512000",
    ),
]


@pytest.fixture(scope="module")
def module_box() -> Iterator[Sandbox]:
    from attribute_bridge import aws as aws_adapters

    aws_adapters.aws_client.cache_clear()
    with sandbox() as stack:
        yield stack
    aws_adapters.aws_client.cache_clear()
    os.environ.pop("DEAD_LETTER_QUEUE_URL", None)


@pytest.fixture
def box(module_box: Sandbox) -> Sandbox:
    """One sandbox for the module (these tests change nothing but what is cleared here)."""
    module_box.emulator.reset()
    module_box.external.reset()
    for function in (FETCH, SYNC, PATCH):
        module_box.dead_letters(function)
    module_box.emitted_events()
    return module_box


@pytest.fixture
def printed(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What the functions print, as CloudWatch would get it: the Powertools JSON log lines
    and the EMF metric lines, parsed (the sandbox sends both to the current stdout)."""

    def lines() -> list[dict[str, Any]]:
        out, err = capfd.readouterr()
        return [json.loads(line) for line in (out + err).splitlines() if line.startswith("{")]

    yield lines


def dead_letter_keeps(box: Sandbox, function: str) -> NameList:
    settings = Settings.from_env(box.environment(function))
    return settings.sync_inputs | settings.writable_attributes


def rejected_everything_clearly(
    box: Sandbox, function: str, event: Any, reason: str, lines: list[dict[str, Any]], result: Any
) -> None:
    # the answer
    assert isinstance(result, dict) and result["outcome"] == "rejected", result
    assert reason in result["error"]
    # one clear log line
    errors = [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]
    assert len(errors) == 1, errors
    assert errors[0]["message"] == "Rejected bad input" and reason in errors[0]["reason"]
    assert errors[0]["function_name"] == function
    # a metric
    metrics = [line for line in lines if "_aws" in line]
    assert [m.get("Rejected") for m in metrics] == [[1.0]]
    # the dead-letter queue, with the reason
    (message,) = [json.loads(m) for m in box.dead_letters(function)]
    assert message["deadLetter"]["reason"] == "rejected"
    assert reason in message["deadLetter"]["error"]
    assert message["deadLetter"]["function"] == function.removesuffix("Function")
    assert len(json.dumps(message)) < 256 * 1024  # fits in SQS whatever came in
    # replayable as it came, less the attributes no step needs (never kept in a dead letter)
    kept = without_other_attributes(event, dead_letter_keeps(box, function))
    if len(json.dumps(kept)) < 200_000:
        assert message["event"] == kept
    else:
        assert message["event"]["truncated"] is True  # too big to keep: a preview
    # nothing reached Genesys or the external system, nothing went on
    assert box.emulator.counters()["requests"] == {}
    assert box.external.received == []
    assert box.emitted_events() == []


@pytest.mark.parametrize(
    ("function", "event", "reason"),
    [pytest.param(function, event, reason, id=case) for case, function, event, reason in CASES],
)
def test_bad_input_is_rejected_clearly(
    box: Sandbox,
    printed: Callable[[], list[dict[str, Any]]],
    request: pytest.FixtureRequest,
    function: str,
    event: Any,
    reason: str,
) -> None:
    TRIED.append(request.node.callspec.id)
    delivered = copy.deepcopy(event)
    printed()  # forget anything printed before

    result = box.invoke(function, delivered)  # raises nothing

    rejected_everything_clearly(box, function, event, reason, printed(), result)


def test_a_rejected_event_is_not_retried_and_replays_to_the_same_answer(
    box: Sandbox, printed: Callable[[], list[dict[str, Any]]]
) -> None:
    from localdev.runner import invoke_async, replay_dead_letters

    event = app(detail(conversationId=BAD_ID))
    step = invoke_async(box, PATCH, event)  # as Lambda delivers it: no retry is needed
    assert step.outcome == "rejected"
    assert len([line for line in printed() if line.get("message") == "Rejected bad input"]) == 1
    # Replaying the dead letter rejects it again, back into the queue: never dropped.
    (run,) = replay_dead_letters(box, PATCH)
    assert [s.outcome for s in run.steps] == ["rejected"]
    (message,) = [json.loads(body) for body in box.dead_letters(PATCH)]
    assert message["event"] == event


def test_media_that_is_known_but_not_handled_is_dropped_with_the_reason(
    box: Sandbox, printed: Callable[[], list[dict[str, Any]]]
) -> None:
    event = sample("ignored/genesys-chat-customer-start.json")
    printed()
    result = box.invoke(FETCH, event)
    assert result["outcome"] == "dropped"
    assert result["reason"] == "media type CHAT is not handled"
    lines = printed()
    (done,) = [line for line in lines if line.get("message") == "Step done"]
    assert done["reason"] == "media type CHAT is not handled"
    assert [m.get("Dropped") for m in lines if "_aws" in m] == [[1.0]]
    assert not [line for line in lines if line.get("level") == "ERROR"]
    assert box.dead_letters(FETCH) == []  # a decision, not a failure
    assert box.emulator.counters()["requests"] == {}


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"case_status": "x" * 257, "crm_ok": "1"}, "value of 257 characters, at most 256"),
        ({**{f"crm_{i:02d}": "v" for i in range(51)}}, "more than 50 attributes"),
    ],
    ids=["value longer than 256", "51 attributes to write"],
)
def test_a_write_the_rules_refuse_is_refused_by_key_and_reported(
    box: Sandbox, attributes: dict[str, str], reason: str
) -> None:
    """Not a bad event: the write rules refuse the keys they must, the others still go
    (write_rules.py), each refusal named with its reason in the result and the log."""
    event = sample("app-attributes-resolved.json")
    box.ensure_conversation(event)
    event["detail"]["attributes"] = attributes
    event["detail"]["basedOn"] = dict.fromkeys(attributes)

    result = box.invoke(PATCH, event)

    assert result["outcome"] == "patched"
    assert reason in result["refused"].values()
    assert len(result["writtenKeys"]) == min(50, len(attributes) - 1)


def test_upper_case_ids_are_accepted_and_written_lower_case(box: Sandbox) -> None:
    """The other side of strict ids: a valid UUID in capitals is a valid UUID."""
    event = sample("app-update-requested.json")
    box.ensure_conversation(event)
    event["detail"]["conversationId"] = event["detail"]["conversationId"].upper()
    event["detail"]["participantId"] = event["detail"]["participantId"].upper()
    result = box.invoke(PATCH, event)
    assert result["outcome"] == "patched"
    assert result["conversationId"] == event["detail"]["conversationId"].lower()


@pytest.fixture(scope="module", autouse=True)
def _summary() -> Iterator[None]:
    """RELIABILITY_SUMMARY=DIR: write DIR/bad-input.json, the list in RELIABILITY.md."""
    yield
    folder = os.environ.get("RELIABILITY_SUMMARY")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        text = json.dumps({"rejected": TRIED}, indent=2) + "\n"
        (Path(folder) / "bad-input.json").write_text(text, encoding="utf-8")
