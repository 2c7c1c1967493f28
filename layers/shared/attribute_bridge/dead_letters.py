"""Events that cannot succeed as they are go to the function's dead-letter queue with the
reason, so nothing is dropped silently; `replay` puts any dead-lettered event back."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

MAX_MESSAGE_BYTES = 200_000  # SQS takes 256 KiB; keep room for the envelope


class DeadLetterQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self._url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        from attribute_bridge.aws import aws_client

        return self._client or aws_client("sqs")

    def send(
        self,
        event: Any,
        function: str,
        reason: str,
        error: str,
        correlation_id: str | None,
        function_arn: str | None = None,
    ) -> None:
        if not self._url:
            raise RuntimeError("DEAD_LETTER_QUEUE_URL is not configured")
        self.client.send_message(
            QueueUrl=self._url,
            MessageBody=dead_letter_body(
                event, function, reason, error, correlation_id, function_arn
            ),
        )


def dead_letter_body(
    event: Any,
    function: str,
    reason: str,
    error: str,
    correlation_id: str | None,
    function_arn: str | None = None,
    now: float | None = None,
) -> str:
    """`deadLetter` says who wrote it (`function`, `functionArn`: the replay script
    refuses what another stack wrote), when (`deadLetteredAt`, epoch ms), and why
    (`reason`: the outcome, `error`)."""
    try:
        event_json = json.dumps(event)
    except (TypeError, ValueError):
        event_json = json.dumps(repr(event))
    if len(event_json.encode()) > MAX_MESSAGE_BYTES:
        # Too big for SQS (a 1 MB direct invoke): keep the start, say it was cut.
        kept: Any = {"truncated": True, "preview": event_json[:10_000]}
    else:
        kept = json.loads(event_json)
    return json.dumps(
        {
            "deadLetter": {
                "function": function,
                "functionArn": function_arn,
                "deadLetteredAt": int((time.time() if now is None else now) * 1000),
                "reason": reason,
                "error": error[:1000],
                "correlationId": correlation_id,
            },
            "event": kept,
        }
    )


def original_event(message_body: str) -> dict[str, Any] | None:
    """The event to replay, from any of the three kinds of dead letter this stack makes:
    ours (`deadLetter` + `event`), a Lambda OnFailure destination record (`requestPayload`)
    and an EventBridge target DLQ message (the event itself)."""
    try:
        body = json.loads(message_body)
    except ValueError:
        return None
    if not isinstance(body, Mapping):
        return None
    if "deadLetter" in body:
        event = body.get("event")
    elif "requestPayload" in body:
        event = body.get("requestPayload")
    else:
        event = body
    if not isinstance(event, dict) or event.get("truncated"):
        return None
    return event
