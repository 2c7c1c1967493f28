"""Replay a function's dead-letter queue into the deployed function, once the cause is
fixed. Each message's original event (from a handler rejection, a Lambda OnFailure
record or an EventBridge target failure) is invoked asynchronously; the message is
deleted only after Lambda accepted the invoke. Messages without a usable event stay.

    python scripts/replay_dead_letters.py --stack participant-attributes-dev \\
        --function FetchAttributesFunction [--dry-run] [--max 100]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layers" / "shared"))

from attribute_bridge.dead_letters import original_event

DLQ_OF = {
    "FetchAttributesFunction": "FetchAttributesDLQ",
    "SyncExternalFunction": "SyncExternalDLQ",
    "PatchAttributesFunction": "PatchAttributesDLQ",
    "TokenRefresherFunction": "TokenRefresherDLQ",
}


def replay(
    sqs: Any, queue_url: str, deliver: Callable[[dict[str, Any]], None], limit: int
) -> dict[str, int]:
    """Deliver each dead-lettered event; delete its message once delivered."""
    counts = {"replayed": 0, "kept": 0}
    seen: set[str] = set()
    while counts["replayed"] + counts["kept"] < limit:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=1
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            event = original_event(message["Body"])
            if event is None:
                counts["kept"] += 1  # unreadable or truncated: left for a person to read
                continue
            deliver(event)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            counts["replayed"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--function", required=True, choices=sorted(DLQ_OF))
    parser.add_argument("--max", type=int, default=1000)
    parser.add_argument("--dry-run", action="store_true", help="print events, invoke nothing")
    args = parser.parse_args(argv)

    import boto3

    cloudformation = boto3.client("cloudformation")

    def physical_id(logical_id: str) -> str:
        resource = cloudformation.describe_stack_resource(
            StackName=args.stack, LogicalResourceId=logical_id
        )
        return str(resource["StackResourceDetail"]["PhysicalResourceId"])

    queue_url = physical_id(DLQ_OF[args.function])
    function_name = physical_id(args.function)
    lambda_client = boto3.client("lambda")

    def deliver(event: dict[str, Any]) -> None:
        lambda_client.invoke(
            FunctionName=function_name, InvocationType="Event", Payload=json.dumps(event)
        )

    if args.dry_run:
        messages = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        for message in messages.get("Messages", []):
            print(json.dumps(original_event(message["Body"])))
        return 0
    counts = replay(boto3.client("sqs"), queue_url, deliver, args.max)
    print(json.dumps({"function": function_name, "queue": queue_url, **counts}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
