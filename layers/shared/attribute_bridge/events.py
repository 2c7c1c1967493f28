"""The events this project reads and writes, parsed and validated at the edge.

Genesys events arrive in the EventBridge envelope (`detail.topicName`, `detail.eventBody`,
`detail.metadata.CorrelationId`). The app's own events carry camelCase details; their
detail-types are the names below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attribute_bridge.call_context import KNOWN_CONTEXT_FIELDS, select_context
from attribute_bridge.errors import InvalidInput
from attribute_bridge.validation import AttributeLimits, is_uuid, validate_attributes

FETCHED = "ParticipantAttributesFetched"
RESOLVED = "ParticipantAttributesResolved"
UPDATE_REQUESTED = "ParticipantAttributesUpdateRequested"
PATCHED = "ParticipantAttributesPatched"
SYNC_REQUESTED = "ParticipantAttributesSyncRequested"

_TOPIC = re.compile(r"^v2\.detail\.events\.conversation\.([^.]+)\.([a-z.]+)$")
# What an incoming attribute map may hold: Genesys keeps more than a bot flow may set, so
# the limits are wider than the ones applied to what this project writes.
INCOMING_LIMITS = AttributeLimits(max_keys=500, max_key_length=512, max_value_length=8192)
KNOWN_MEDIA_TYPES = frozenset(
    {
        "UNKNOWN", "VOICE", "CHAT", "EMAIL", "CALLBACK", "COBROWSE", "VIDEO",
        "SCREENSHARE", "MESSAGE", "INTERNALMESSAGE", "SCREENMONITORING",
    }
)  # fmt: skip


@dataclass(frozen=True)
class ConversationEvent:
    """What FetchAttributes needs from a Genesys event or a sync request."""

    source_event_id: str
    kind: str  # "customer.start", "attributes", ... or "sync.requested"
    conversation_id: str
    participant_id: str | None
    media_type: str | None  # None: unknown (a sync request); read generically
    attributes: dict[str, str] | None  # carried by the `attributes` topic only
    correlation_id: str
    event_time_ms: int | None
    context: Mapping[str, str] | None = None  # call context fields of the eventBody


@dataclass(frozen=True)
class AttributesDetail:
    """Detail of the app's own events: Fetched, Resolved, UpdateRequested, Patched."""

    conversation_id: str
    participant_id: str
    media_type: str
    attributes: dict[str, str]
    correlation_id: str
    source_event_id: str
    context: Mapping[str, str] | None = None  # call context (SyncContextFields) or None

    def to_dict(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "conversationId": self.conversation_id,
            "participantId": self.participant_id,
            "mediaType": self.media_type,
            "attributes": dict(self.attributes),
            "correlationId": self.correlation_id,
            "sourceEventId": self.source_event_id,
        }
        if self.context:
            detail["context"] = dict(self.context)
        return detail


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{where} must be an object, got {type(value).__name__}")
    return value


def _uuid(value: Any, where: str) -> str:
    if not is_uuid(value):
        shown = repr(value)[:60]
        raise InvalidInput(f"{where} must be a UUID, got {shown}")
    return str(value).lower()


def _media(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.upper() not in KNOWN_MEDIA_TYPES:
        raise InvalidInput(f"{where} is not a known Genesys media type: {str(value)[:40]!r}")
    return value.upper()


def _text(value: Any, default: str, max_length: int = 256) -> str:
    if isinstance(value, str) and value and len(value) <= max_length:
        return value
    return default


def parse_conversation_event(event: Any) -> ConversationEvent:
    """A Genesys conversation event or a SyncRequested event -> ConversationEvent."""
    envelope = _object(event, "event")
    detail = _object(envelope.get("detail"), "detail")
    event_id = _text(envelope.get("id"), "unknown")
    if envelope.get("detail-type") == SYNC_REQUESTED:
        return ConversationEvent(
            source_event_id=event_id,
            kind="sync.requested",
            conversation_id=_uuid(detail.get("conversationId"), "detail.conversationId"),
            participant_id=(
                _uuid(detail["participantId"], "detail.participantId")
                if detail.get("participantId") is not None
                else None
            ),
            media_type=(
                _media(detail["mediaType"], "detail.mediaType") if detail.get("mediaType") else None
            ),
            attributes=None,
            correlation_id=_text(detail.get("correlationId"), event_id),
            event_time_ms=None,
        )
    topic = detail.get("topicName")
    match = _TOPIC.match(topic) if isinstance(topic, str) else None
    if match is None:
        raise InvalidInput(f"detail.topicName is not a conversation detail topic: {topic!r:.80}")
    body = _object(detail.get("eventBody"), "detail.eventBody")
    conversation_id = _uuid(body.get("conversationId"), "detail.eventBody.conversationId")
    if match.group(1).lower() != conversation_id:
        raise InvalidInput("detail.topicName names another conversation than its eventBody")
    kind = match.group(2)
    participant_id = body.get("participantId")
    metadata = detail.get("metadata")
    correlation = metadata.get("CorrelationId") if isinstance(metadata, Mapping) else None
    event_time = body.get("eventTime")
    return ConversationEvent(
        source_event_id=event_id,
        kind=kind,
        conversation_id=conversation_id,
        participant_id=(
            _uuid(participant_id, "detail.eventBody.participantId")
            if participant_id is not None
            else None
        ),
        media_type=_event_media_type(body),
        attributes=(
            validate_attributes(body.get("attributes"), INCOMING_LIMITS)
            if kind == "attributes"
            else None
        ),
        correlation_id=_text(correlation, event_id),
        event_time_ms=event_time if isinstance(event_time, int) else None,
        context=select_context(KNOWN_CONTEXT_FIELDS, body),  # filtered again by the fetch
    )


def _event_media_type(body: Mapping[str, Any]) -> str:
    """Most topics carry `mediaType`; `attributes` carries `communications[].mediaType`."""
    if "mediaType" in body:
        return _media(body["mediaType"], "detail.eventBody.mediaType")
    communications = body.get("communications")
    if isinstance(communications, list):
        for communication in communications:
            if isinstance(communication, Mapping) and communication.get("mediaType"):
                return _media(communication["mediaType"], "communications[].mediaType")
    raise InvalidInput("detail.eventBody has no mediaType nor communications[].mediaType")


def parse_attributes_detail(event: Any, limits: AttributeLimits) -> AttributesDetail:
    """The detail of Fetched / Resolved / UpdateRequested events, validated."""
    envelope = _object(event, "event")
    detail = _object(envelope.get("detail"), "detail")
    event_id = _text(envelope.get("id"), "unknown")
    return AttributesDetail(
        conversation_id=_uuid(detail.get("conversationId"), "detail.conversationId"),
        participant_id=_uuid(detail.get("participantId"), "detail.participantId"),
        media_type=_media(detail.get("mediaType"), "detail.mediaType"),
        attributes=validate_attributes(detail.get("attributes"), limits),
        correlation_id=_text(detail.get("correlationId"), event_id),
        source_event_id=_text(detail.get("sourceEventId"), event_id),
        context=select_context(
            KNOWN_CONTEXT_FIELDS, _object(detail.get("context") or {}, "detail.context")
        ),
    )


def correlation_id_of(event: Any) -> str | None:
    """Best effort, for logging before (or despite) validation."""
    if not isinstance(event, Mapping):
        return None
    detail = event.get("detail")
    if isinstance(detail, Mapping):
        metadata = detail.get("metadata")
        if isinstance(metadata, Mapping) and isinstance(metadata.get("CorrelationId"), str):
            return str(metadata["CorrelationId"])[:128]
        if isinstance(detail.get("correlationId"), str):
            return str(detail["correlationId"])[:128]
    event_id = event.get("id")
    return str(event_id)[:128] if isinstance(event_id, str) else None
