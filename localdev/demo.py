"""`make demo`: a live voice call and a live web-messaging conversation, their sample
events driven through the whole chain as EventBridge would, attributes before and after."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from localdev.runner import PipelineRun, run_chain
from localdev.sandbox import REPO_ROOT, Sandbox, sandbox

EVENTS = REPO_ROOT / "events"
SCENARIOS = (
    # (title, sample event, media, message type, the customer's attributes at the start)
    (
        "Voice call: customer in the IVR",
        "genesys-voice-customer-start.json",
        "VOICE",
        None,
        {"case_id": "CASE-1001", "ivr_language": "en-US"},
    ),
    (
        "Web messaging: customer's first message",
        "genesys-message-customer-start.json",
        "MESSAGE",
        "WEBMESSAGING",
        {"case_id": "CASE-2002", "customer_tier": "gold"},
    ),
)


def demo_main() -> int:
    # The functions' JSON logs and metrics go to a file; the terminal shows the story.
    log_path = Path(tempfile.gettempdir()) / "participant-attributes-demo.log"
    with log_path.open("w", encoding="utf-8") as log, contextlib.redirect_stderr(log):
        code = _demo()
    print(f"function logs and metrics (JSON lines): {log_path}")
    return code


def _demo() -> int:
    started = time.monotonic()
    with sandbox() as box:
        print("Genesys Cloud emulator:", box.emulator.base_url)
        print("External system stub:  ", box.external.sync_url)
        print("Functions (template.yaml):", ", ".join(sorted(box.template.functions)))
        for title, event_file, media, message_type, attributes in SCENARIOS:
            event = json.loads((EVENTS / event_file).read_text(encoding="utf-8"))
            body = event["detail"]["eventBody"]
            conversation_id, customer_id = body["conversationId"], body["participantId"]
            box.emulator.create_conversation(
                media_type=media,
                message_type=message_type,
                conversation_id=conversation_id,
                participants=[
                    {"purpose": "customer", "id": customer_id, "attributes": attributes},
                    {"purpose": "ivr" if media == "VOICE" else "acd"},
                ],
            )
            print(f"\n=== {title} ===")
            print(f"conversation {conversation_id} ({media}), customer {customer_id}")
            before = box.emulator.participant_attributes(conversation_id, customer_id)
            _print_attributes("before", before)
            print(f"event: {event['detail-type']}  (events/{event_file})")
            _print_steps(run_chain(box, event))
            after = box.emulator.participant_attributes(conversation_id, customer_id)
            _print_attributes("after", after, before)
            _show_loop_stops(box, event, after)
        counters = box.emulator.counters()
    print("\n=== Genesys API requests, whole demo ===")
    for route, count in sorted(counters["requests"].items()):
        print(f"  {count:3d}  {route}")
    print(f"  tokens minted: {counters['tokens_minted']}")
    print(f"  rate limited (429): {counters['rate_limited']}")
    print(f"\ndone in {time.monotonic() - started:.1f} s")
    return 0


def _show_loop_stops(box: Sandbox, start_event: dict[str, Any], attributes: dict[str, str]) -> None:
    """Writing attributes makes Genesys emit an `attributes` event; the chain must stop
    there (nothing changes) instead of syncing forever."""
    body = start_event["detail"]["eventBody"]
    topic = f"v2.detail.events.conversation.{body['conversationId']}.attributes"
    echo = {
        **start_event,
        "id": start_event["id"][:-4] + "beef",
        "detail-type": "v2.detail.events.conversation.{id}.attributes",
        "detail": {
            **start_event["detail"],
            "topicName": topic,
            "eventBody": {
                "eventTime": int(time.time() * 1000),
                "conversationId": body["conversationId"],
                "participantId": body["participantId"],
                "attributes": attributes,
                "communications": [{"id": body.get("sessionId"), "mediaType": body["mediaType"]}],
            },
        },
    }
    print("Genesys then reports the write (`attributes` topic):")
    _print_steps(run_chain(box, echo))


def _print_steps(run: PipelineRun) -> None:
    for step in run.steps:
        print(f"  -> {step.function:26s} {step.detail_type or '':52s} {step.outcome}")


def _print_attributes(
    label: str, attributes: dict[str, str], before: dict[str, str] | None = None
) -> None:
    print(f"{label}:")
    for key, value in sorted(attributes.items()):
        mark = " " if before is None or before.get(key) == value else "+"
        print(f"  {mark} {key} = {value}")


if __name__ == "__main__":
    raise SystemExit(demo_main())


__all__ = ["demo_main"]
