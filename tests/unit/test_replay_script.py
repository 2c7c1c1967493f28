"""scripts/replay_dead_letters.py against moto SQS: every kind of dead letter this stack
makes is replayed and deleted; an unreadable one stays for a person."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from attribute_bridge.dead_letters import dead_letter_body
from moto import mock_aws

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "replay_dead_letters.py"
EVENT = {"id": "e1", "detail-type": "ParticipantAttributesResolved", "detail": {"a": 1}}


def load_script() -> Any:
    spec = importlib.util.spec_from_file_location("replay_dead_letters", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replays_each_kind_of_dead_letter_and_keeps_unreadable_ones() -> None:
    script = load_script()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        bodies = [
            dead_letter_body(EVENT, "PatchAttributesFunction", "failed", "boom", "c1"),
            json.dumps({"requestContext": {}, "requestPayload": EVENT}),  # Lambda OnFailure
            json.dumps(EVENT),  # EventBridge target DLQ: the event itself
            "not json",
        ]
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=body)
        delivered: list[dict[str, Any]] = []

        counts = script.replay(sqs, url, delivered.append, limit=100)

        assert counts == {"replayed": 3, "kept": 1}
        assert delivered == [EVENT, EVENT, EVENT]
        assert messages_left(sqs, url) == 1  # the unreadable one


def messages_left(sqs: Any, url: str) -> int:
    """Visible plus in flight: what the queue still holds."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def test_a_failed_delivery_keeps_the_message() -> None:
    script = load_script()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="dlq", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(EVENT))

        def refuse(event: dict[str, Any]) -> None:
            raise RuntimeError("Lambda refused the invoke")

        with pytest.raises(RuntimeError):
            script.replay(sqs, url, refuse, limit=10)

        assert messages_left(sqs, url) == 1
