"""scripts/replay_dead_letters.py against moto SQS: every kind of dead letter this stack
makes is replayed (marked `replay: true`) and deleted; what another stack or function
wrote, or what cannot be read, stays for a person; a dry run lists and changes nothing."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from attribute_bridge.dead_letters import dead_letter_body
from moto import mock_aws

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "replay_dead_letters.py"
ARN = "arn:aws:lambda:us-east-1:123456789012:function:stack-PatchAttributes-1A2B"
OTHER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:other-PatchAttributes-9Z"
GENESYS_SOURCE = "aws.partner/genesys.com/cloud/5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9/pa"
CONVERSATION = "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b"
EVENT = {
    "id": "e1",
    "source": "participant-attributes",
    "time": "2026-11-21T10:30:46Z",
    "detail-type": "ParticipantAttributesResolved",
    "detail": {"conversationId": CONVERSATION, "attributes": {"case_status": "open"}},
}
NOW = 1_795_260_646.0  # an hour after EVENT["time"]


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("replay_dead_letters", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


script = load_script()
STACK = script.StackIdentity(
    logical_id="PatchAttributesFunction",
    function_arn=ARN,
    event_sources=frozenset({"participant-attributes", GENESYS_SOURCE}),
)


def on_failure(event: Any, arn: str = f"{ARN}:$LATEST") -> str:
    """A Lambda OnFailure destination record (the qualified ARN, as Lambda writes it)."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-21T10:35:00.000Z",
            "requestContext": {"functionArn": arn, "condition": "RetriesExhausted"},
            "requestPayload": event,
            "responsePayload": {"errorType": "RateLimited", "errorMessage": "429 for 60 s"},
        }
    )


@pytest.fixture
def queue() -> Any:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        yield sqs, url


def send(sqs: Any, url: str, body: str, target: str | None = None) -> None:
    attributes = {}
    if target is not None:  # what EventBridge adds to a target-failure message
        attributes = {
            "TARGET_ARN": {"DataType": "String", "StringValue": target},
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"},
            "ERROR_MESSAGE": {"DataType": "String", "StringValue": "Lambda throttled"},
        }
    sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)


def run(sqs: Any, url: str, dry_run: bool = False) -> tuple[dict[str, int], list[Any], list[Any]]:
    delivered: list[dict[str, Any]] = []
    out = io.StringIO()
    counts = script.replay(
        sqs, url, delivered.append, STACK, limit=100, dry_run=dry_run, out=out, now=lambda: NOW
    )
    return counts, delivered, [json.loads(line) for line in out.getvalue().splitlines()]


def messages_left(sqs: Any, url: str) -> int:
    """Visible plus in flight: what the queue still holds."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def visible(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def test_replays_each_kind_of_dead_letter_marked_as_a_replay(queue: Any) -> None:
    sqs, url = queue
    send(sqs, url, dead_letter_body(EVENT, "PatchAttributes", "failed", "boom", "c1", ARN))
    send(sqs, url, on_failure(EVENT))
    send(sqs, url, json.dumps(EVENT), target=ARN)  # EventBridge target DLQ: the event itself

    counts, delivered, lines = run(sqs, url)

    assert counts == {"replayed": 3, "kept": 0}
    replayed = {**EVENT, "detail": {**EVENT["detail"], "replay": True}}
    assert delivered == [replayed] * 3
    assert EVENT["detail"].get("replay") is None  # the original is not changed
    assert [(line["kind"], line["action"]) for line in lines] == [
        ("handler", "replayed"),
        ("lambda-on-failure", "replayed"),
        ("eventbridge", "replayed"),
    ]
    assert [line["deadLetteredWith"] for line in lines] == [
        "failed",
        "RetriesExhausted",
        "SDK_CLIENT_ERROR",
    ]
    assert {line["conversationId"] for line in lines} == {CONVERSATION}
    assert messages_left(sqs, url) == 0


@pytest.mark.parametrize(
    ("body", "target", "why"),
    [
        (
            dead_letter_body(EVENT, "PatchAttributes", "failed", "x", "c", OTHER_ARN),
            None,
            "another",
        ),
        (dead_letter_body(EVENT, "SyncExternal", "failed", "x", "c"), None, "another function"),
        (on_failure(EVENT, arn=OTHER_ARN), None, "another function"),
        (json.dumps(EVENT), OTHER_ARN, "another function"),
        (json.dumps({**EVENT, "source": "someone.else"}), None, "is not this stack's"),
        (on_failure({**EVENT, "source": "aws.partner/x.com/y"}), None, "not this stack's"),
        (json.dumps({**EVENT, "detail": "text"}), None, "no detail object"),
        (
            dead_letter_body({"x": "y" * 300_000}, "PatchAttributes", "rejected", "big", None, ARN),
            None,
            "truncated",
        ),
        ("not json", None, "not a JSON object"),
    ],
    ids=[
        "handler-letter-of-another-stack",
        "handler-letter-of-another-function",
        "on-failure-of-another-function",
        "eventbridge-for-another-target",
        "foreign-source",
        "foreign-source-in-a-record",
        "detail-not-an-object",
        "truncated",
        "unreadable",
    ],
)
def test_refuses_what_this_stack_did_not_write_and_keeps_it(
    queue: Any, body: str, target: str | None, why: str
) -> None:
    sqs, url = queue
    send(sqs, url, body, target=target)

    counts, delivered, lines = run(sqs, url)

    assert counts == {"replayed": 0, "kept": 1} and delivered == []
    ((line),) = lines
    assert line["action"] == "refused" and why in line["why"]
    assert visible(sqs, url) == 1  # kept, and visible again at once for a person


def test_a_genesys_event_from_the_partner_source_is_replayed() -> None:
    genesys = {
        "id": "g1",
        "source": GENESYS_SOURCE,
        "time": "2026-11-21T10:30:45Z",
        "detail": {"eventBody": {"conversationId": CONVERSATION, "eventTime": 1}},
    }
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        send(sqs, url, on_failure(genesys))
        counts, delivered, lines = run(sqs, url)
    assert counts["replayed"] == 1 and delivered[0]["detail"]["replay"] is True
    assert lines[0]["conversationId"] == CONVERSATION
    assert lines[0]["ageSeconds"] == round(NOW)  # from eventTime (1 ms after the epoch)


def test_a_dry_run_lists_function_conversation_age_and_outcome_and_changes_nothing(
    queue: Any,
) -> None:
    sqs, url = queue
    letter = dead_letter_body(EVENT, "PatchAttributes", "failed", "external 401", "c1", ARN)
    send(sqs, url, letter)
    send(sqs, url, json.dumps({**EVENT, "source": "someone.else"}))

    counts, delivered, lines = run(sqs, url, dry_run=True)

    assert counts == {"would_replay": 1, "kept": 1} and delivered == []
    first, second = lines
    assert first == {
        "messageId": first["messageId"],
        "action": "would replay",
        "kind": "handler",
        "conversationId": CONVERSATION,
        "ageSeconds": 3600,  # since the event's own time
        "deadLetteredWith": "failed",
        "error": "external 401",
    }
    assert second["action"] == "refused"
    assert visible(sqs, url) == 2  # both still there, visible at once


def test_a_failed_delivery_keeps_the_message() -> None:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=on_failure(EVENT))

        def refuse(event: dict[str, Any]) -> None:
            raise RuntimeError("Lambda refused the invoke")

        with pytest.raises(RuntimeError):
            script.replay(sqs, url, refuse, STACK, limit=10, out=io.StringIO())

        assert messages_left(sqs, url) == 1
