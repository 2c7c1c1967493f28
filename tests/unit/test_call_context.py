"""Call context (SyncContextFields): which conversation fields the external system may
receive. Personal data: only the named, known fields, and none by default."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from attribute_bridge.budget import Budget
from attribute_bridge.call_context import (
    KNOWN_CONTEXT_FIELDS,
    external_payload,
    select_context,
    unknown_context_fields,
)
from attribute_bridge.config import Settings
from attribute_bridge.events import (
    AttributesDetail,
    parse_attributes_detail,
    parse_conversation_event,
)
from attribute_bridge.validation import AttributeLimits

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_only_allowed_known_usable_fields_are_selected() -> None:
    source = {
        "ani": "tel:+13175550123",
        "dnis": "",  # empty: nothing to send
        "direction": 7,  # not a string
        "queueId": "q" * 257,  # too long
        "password": "hunter2",  # not a context field, even when named
        "addressFrom": "someone@example.com",
    }

    chosen = select_context(["ani", "dnis", "direction", "queueId", "password"], source)

    assert chosen == {"ani": "tel:+13175550123"}
    assert select_context([], source) == {}
    assert select_context(KNOWN_CONTEXT_FIELDS, None) == {}
    assert unknown_context_fields(["ani", "password"]) == ["password"]


def test_the_voice_event_body_gives_its_context() -> None:
    event = parse_conversation_event(sample("genesys-voice-customer-start.json"))
    assert event.context is not None
    assert event.context["ani"] == "tel:+13175550123"
    assert event.context["direction"] == "INBOUND"

    attributes_topic = parse_conversation_event(sample("genesys-voice-attributes-update.json"))
    assert attributes_topic.context == {}  # that topic names no caller


def test_the_message_event_body_gives_the_messaging_addresses() -> None:
    event = parse_conversation_event(sample("genesys-message-customer-start.json"))
    assert event.context is not None
    assert event.context["addressTo"] == "Web Messaging Deployment"
    assert "ani" not in event.context


@pytest.mark.parametrize("fields", [(), ("ani",), ("ani", "dnis", "direction")])
def test_the_payload_carries_exactly_the_allowed_context(fields: tuple[str, ...]) -> None:
    detail = AttributesDetail(
        conversation_id="c",
        participant_id="p",
        media_type="VOICE",
        attributes={"case_id": "1", "secret": "s"},
        correlation_id="x",
        source_event_id="e",
        context={"ani": "tel:1", "dnis": "tel:2", "direction": "INBOUND"},
    )
    settings = Settings(allowed_attributes=("case_id",), context_fields=fields)

    payload = external_payload(detail, settings)

    assert set(payload) == {
        "conversationId",
        "participantId",
        "mediaType",
        "correlationId",
        "attributes",
        "context",
    }
    assert payload["attributes"] == {"case_id": "1"}
    assert set(payload["context"]) == set(fields)


def test_context_survives_the_app_event_and_is_absent_when_empty() -> None:
    detail = AttributesDetail(
        conversation_id="6b1f2a9e-3c4d-4e5f-8a7b-9c0d1e2f3a4b",
        participant_id="0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f",
        media_type="VOICE",
        attributes={},
        correlation_id="x",
        source_event_id="e",
        read_at_ms=1_796_000_000_000,
        context={"ani": "tel:1"},
    )
    event = {"id": "e", "detail": detail.to_dict()}

    assert parse_attributes_detail(event, AttributeLimits()).context == {"ani": "tel:1"}
    assert "context" not in AttributesDetail("c", "p", "VOICE", {}, "x", "e").to_dict()


def test_the_settings_read_the_fields_and_the_budget() -> None:
    settings = Settings.from_env(
        {"SYNC_CONTEXT_FIELDS": "ani, dnis", "RESOLVE_BUDGET_SECONDS": "2.5"}
    )
    assert settings.context_fields == ("ani", "dnis")
    assert settings.resolve_budget_seconds == 2.5
    assert Settings.from_env({}).context_fields == ()


class NeverRead:
    def get_conversation(self, conversation_id: str, media_type: str, budget: Budget) -> Any:
        raise AssertionError("the attributes topic carries the attributes: no read")
