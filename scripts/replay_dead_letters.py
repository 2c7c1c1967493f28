"""Replay a function's dead-letter queue into the deployed function, once the cause is
fixed, without doing harm.

- `--dry-run` lists what would be replayed, one JSON line per message (function,
  conversation, age, the outcome it was dead-lettered with, and the decision), and
  changes nothing: no invoke, no delete.
- Only what this stack wrote is replayed: a handler's own dead letter must name this
  function (`deadLetter.functionArn`, or its name in older letters), a Lambda OnFailure
  record this function's ARN, an EventBridge target-failure message this function as its
  target; and the event's `source` must be this stack's (APP_EVENT_SOURCE) or its Genesys
  partner event source. Anything else is refused and left in the queue for a person.
- A replayed event carries `detail.replay: true` (docs: CONTRACT, AttributesDetail), so
  PatchAttributes re-reads the participant and writes only what is still current
  (compare-and-set) instead of putting an old value back.
- Each event is invoked asynchronously; its message is deleted only after Lambda accepted
  the invoke. The output says, per message, what happened.

    python scripts/replay_dead_letters.py --stack participant-attributes-dev \\
        --function PatchAttributesFunction [--dry-run] [--max 100]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))

from attribute_bridge.dead_letters import original_event

DLQ_OF = {
    "FetchAttributesFunction": "FetchAttributesDLQ",
    "SyncExternalFunction": "SyncExternalDLQ",
    "PatchAttributesFunction": "PatchAttributesDLQ",
    "TokenRefresherFunction": "TokenRefresherDLQ",
}
# The `function` a handler writes in its own dead letters (handling.handle's argument).
HANDLER_NAME_OF = {logical_id: logical_id.removesuffix("Function") for logical_id in DLQ_OF}
RECEIVE_VISIBILITY_SECONDS = 60


@dataclass(frozen=True)
class StackIdentity:
    """What a dead letter must name to be replayed into this stack's function."""

    logical_id: str  # FetchAttributesFunction, ...
    function_arn: str  # unqualified
    event_sources: frozenset[str]  # APP_EVENT_SOURCE and the Genesys partner event source


@dataclass(frozen=True)
class Letter:
    """One dead-letter message, read and judged."""

    message_id: str
    kind: str  # handler | lambda-on-failure | eventbridge | unreadable
    event: dict[str, Any] | None
    outcome: str  # what it was dead-lettered with
    error: str
    conversation_id: str | None
    age_seconds: float | None  # since the event's own time (or since it was dead-lettered)
    refused: str | None  # why it must not be replayed; None: it may be

    def report(self, action: str) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "action": action,
            "kind": self.kind,
            "conversationId": self.conversation_id,
            "ageSeconds": None if self.age_seconds is None else round(self.age_seconds),
            "deadLetteredWith": self.outcome,
            "error": self.error[:300],
            **({"why": self.refused} if self.refused else {}),
        }


def _unqualified(arn: Any) -> str:
    """arn:aws:lambda:region:account:function:name[:qualifier] -> without the qualifier."""
    parts = str(arn or "").split(":")
    return ":".join(parts[:7])


def _iso_ms(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.timestamp() * 1000 if parsed.tzinfo is not None else None


def judge(message: Mapping[str, Any], stack: StackIdentity, now_ms: float) -> Letter:
    """Which kind of dead letter this is, what it holds, and whether it may be replayed."""
    message_id = str(message.get("MessageId", ""))
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Letter(message_id, "unreadable", None, "", "", None, None, "not a JSON object")
    attributes = message.get("MessageAttributes") or {}
    sent_ms = _number((message.get("Attributes") or {}).get("SentTimestamp"))
    writer_ok: str | None
    if "deadLetter" in body:
        kind = "handler"
        letter = body["deadLetter"] if isinstance(body["deadLetter"], dict) else {}
        outcome, error = str(letter.get("reason", "")), str(letter.get("error", ""))
        written_at = _number(letter.get("deadLetteredAt")) or sent_ms
        if letter.get("functionArn"):
            writer_ok = _same_function(letter["functionArn"], stack)
        elif letter.get("function") == HANDLER_NAME_OF.get(stack.logical_id):
            writer_ok = None  # a letter from before `functionArn`: its name must match
        else:
            writer_ok = f"written by another function ({str(letter.get('function'))[:80]})"
    elif "requestPayload" in body and "requestContext" in body:
        kind = "lambda-on-failure"
        context = body["requestContext"] if isinstance(body["requestContext"], dict) else {}
        response = body.get("responsePayload")
        payload: dict[str, Any] = response if isinstance(response, dict) else {}
        outcome = str(context.get("condition", "RetriesExhausted"))
        error = f"{payload.get('errorType', '')}: {payload.get('errorMessage', '')}".strip(": ")
        written_at = _iso_ms(body.get("timestamp")) or sent_ms
        writer_ok = _same_function(context.get("functionArn"), stack)
    else:
        kind = "eventbridge"  # the event itself; EventBridge adds message attributes
        outcome = _attribute(attributes, "ERROR_CODE") or "not delivered by EventBridge"
        error = _attribute(attributes, "ERROR_MESSAGE") or ""
        written_at = sent_ms
        target = _attribute(attributes, "TARGET_ARN")
        writer_ok = _same_function(target, stack) if target else None
    event = original_event(message.get("Body", ""))
    detail = event.get("detail") if isinstance(event, dict) else None
    conversation = _conversation_of(detail)
    event_ms = _event_time_ms(event, detail)
    since = event_ms if event_ms is not None else written_at
    age = None if since is None else max(0.0, (now_ms - since) / 1000)
    refused = writer_ok
    if refused is None:
        if event is None:
            refused = "no replayable event (truncated: too big for SQS, or not an object)"
        elif event.get("source") not in stack.event_sources:
            refused = f"source {str(event.get('source'))[:120]!r} is not this stack's"
        elif not isinstance(detail, dict):
            refused = "the event has no detail object"
    return Letter(message_id, kind, event, outcome, error, conversation, age, refused)


def _same_function(arn: Any, stack: StackIdentity) -> str | None:
    if _unqualified(arn) == stack.function_arn:
        return None
    return f"written for another function ({str(arn)[:160]})"


def _attribute(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    if isinstance(value, Mapping) and isinstance(value.get("StringValue"), str):
        return str(value["StringValue"])
    return None


def _number(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _conversation_of(detail: Any) -> str | None:
    if not isinstance(detail, Mapping):
        return None
    body = detail.get("eventBody")
    found = (body if isinstance(body, Mapping) else detail).get("conversationId")
    return str(found)[:64] if isinstance(found, str) else None


def _event_time_ms(event: Any, detail: Any) -> float | None:
    body = detail.get("eventBody") if isinstance(detail, Mapping) else None
    if isinstance(body, Mapping) and isinstance(body.get("eventTime"), int):
        return float(body["eventTime"])
    return _iso_ms(event.get("time")) if isinstance(event, Mapping) else None


def marked_as_replay(event: dict[str, Any]) -> dict[str, Any]:
    """The event with `detail.replay: true`: the write path's cue to compare-and-set."""
    replayed = copy.deepcopy(event)
    replayed["detail"]["replay"] = True
    return replayed


def replay(
    sqs: Any,
    queue_url: str,
    deliver: Callable[[dict[str, Any]], None],
    stack: StackIdentity,
    limit: int = 1000,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    now: Callable[[], float] = time.time,
) -> dict[str, int]:
    """Judge each message; deliver (marked as a replay) and delete those this stack wrote,
    keep the others. One JSON line per message on `out`; the counts are returned."""
    counts = {"replayed": 0, "kept": 0} if not dry_run else {"would_replay": 0, "kept": 0}
    seen: set[str] = set()
    held: list[str] = []  # receipt handles to make visible again (kept, or a dry run)
    try:
        while sum(counts.values()) < limit:
            messages = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=min(10, limit - sum(counts.values())),
                VisibilityTimeout=RECEIVE_VISIBILITY_SECONDS,
                WaitTimeSeconds=1,
                AttributeNames=["SentTimestamp"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            fresh = [m for m in messages if m["MessageId"] not in seen]
            if not fresh:
                break
            for message in fresh:
                seen.add(message["MessageId"])
                letter = judge(message, stack, now() * 1000)
                if letter.refused is not None or letter.event is None:
                    held.append(message["ReceiptHandle"])
                    counts["kept"] += 1
                    _print(out, letter.report("refused"))
                    continue
                if dry_run:
                    held.append(message["ReceiptHandle"])
                    counts["would_replay"] += 1
                    _print(out, letter.report("would replay"))
                    continue
                deliver(marked_as_replay(letter.event))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
                counts["replayed"] += 1
                _print(out, letter.report("replayed"))
    finally:
        for receipt in held:  # left in the queue, visible again at once
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0
            )
    return counts


def _print(out: TextIO, line: Mapping[str, Any]) -> None:
    print(json.dumps(line, sort_keys=True), file=out, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--function", required=True, choices=sorted(DLQ_OF))
    parser.add_argument("--max", type=int, default=1000)
    parser.add_argument("--dry-run", action="store_true", help="list, invoke nothing")
    args = parser.parse_args(argv)

    import boto3

    cloudformation = boto3.client("cloudformation")
    lambda_client = boto3.client("lambda")

    def physical_id(logical_id: str) -> str:
        resource = cloudformation.describe_stack_resource(
            StackName=args.stack, LogicalResourceId=logical_id
        )
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])

    queue_url = physical_id(DLQ_OF[args.function])
    configuration = lambda_client.get_function_configuration(
        FunctionName=physical_id(args.function)
    )
    (described,) = cloudformation.describe_stacks(StackName=args.stack)["Stacks"]
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in described["Parameters"]}
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    stack = StackIdentity(
        logical_id=args.function,
        function_arn=_unqualified(configuration["FunctionArn"]),
        event_sources=frozenset(
            source
            for source in (
                variables.get("APP_EVENT_SOURCE"),
                parameters.get("GenesysEventSourceName"),
                # its schedule's events, for the TokenRefresher's own queue
                "aws.events" if args.function == "TokenRefresherFunction" else None,
            )
            if source
        ),
    )

    def deliver(event: dict[str, Any]) -> None:
        lambda_client.invoke(
            FunctionName=stack.function_arn, InvocationType="Event", Payload=json.dumps(event)
        )

    counts = replay(
        boto3.client("sqs"), queue_url, deliver, stack, limit=args.max, dry_run=args.dry_run
    )
    print(json.dumps({"function": stack.function_arn, "queue": queue_url, **counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
