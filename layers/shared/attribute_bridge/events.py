"""The events this project reads and writes, parsed and validated at the edge.

Genesys events arrive in the EventBridge envelope (`detail.topicName`, `detail.eventBody`,
`detail.metadata.CorrelationId`). The app's own events carry camelCase details; their
detail-types are the names below.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
    """Detail of the app's own events: Fetched, Resolved, UpdateRequested.

    They carry only what the next step needs (never the participant's other attributes):
    Fetched the allow-listed inputs in `attributes` and, in `based_on`, the current values
    of the keys that may be written; Resolved and UpdateRequested the keys to write in
    `attributes` and, in `based_on`, the value each one replaces (None: absent), read at
    `read_at_ms`. That is what the stale guard compares against (write_rules.py)."""

    conversation_id: str
    participant_id: str
    media_type: str
    attributes: dict[str, str]
    correlation_id: str
    source_event_id: str
    read_at_ms: int | None = None
    based_on: dict[str, str | None] = field(default_factory=dict)
    replay: bool = False  # set by scripts/replay_dead_letters.py: always compare-and-set
    context: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "conversationId": self.conversation_id,
            "participantId": self.participant_id,
            "mediaType": self.media_type,
            "attributes": dict(self.attributes),
            "correlationId": self.correlation_id,
            "sourceEventId": self.source_event_id,
            "basedOn": dict(self.based_on),
        }
        if self.read_at_ms is not None:
            detail["readAtMs"] = self.read_at_ms
        if self.replay:
            detail["replay"] = True
        if self.context:
            detail["context"] = dict(self.context)
        return detail


def patched_detail(written: AttributesDetail, refused: Mapping[str, str]) -> dict[str, Any]:
    """The audit event of a write: which keys were written and which refused, and why;
    never the values (the archive keeps app events for days)."""
    return {
        "conversationId": written.conversation_id,
        "participantId": written.participant_id,
        "mediaType": written.media_type,
        "writtenKeys": sorted(written.attributes),
        "refused": dict(refused),
        "writtenAtMs": written.read_at_ms,
        "correlationId": written.correlation_id,
        "sourceEventId": written.source_event_id,
    }


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
        event_time_ms=event_time_ms(envelope, body),
        context=select_context(KNOWN_CONTEXT_FIELDS, body),  # filtered again by the fetch
    )


# Clocks differ (Genesys's, AWS's, ours): a little of "the future" is skew, more is a
# wrong or forged time, which would slip past the age check. 5 minutes, as SigV4 allows.
MAX_FUTURE_SKEW_MS = 5 * 60 * 1000


def event_time_ms(
    envelope: Mapping[str, Any], body: Mapping[str, Any], now_ms: int | None = None
) -> int:
    """When a Genesys event happened, in epoch ms, for the age check, which must not be
    skipped: `eventBody.eventTime` when it is an integer (epoch ms, GENESYS.md), else the
    EventBridge envelope's `time` (ISO 8601, when EventBridge received it: later than the
    change, never earlier). Neither readable, or more than MAX_FUTURE_SKEW_MS ahead of
    now: InvalidInput."""
    raw = body.get("eventTime")
    if isinstance(raw, int) and not isinstance(raw, bool):
        when = raw
    else:
        envelope_time = envelope.get("time")
        try:
            parsed = (
                datetime.fromisoformat(envelope_time) if isinstance(envelope_time, str) else None
            )
        except ValueError:
            parsed = None
        if parsed is None or parsed.tzinfo is None:
            raise InvalidInput(
                "the event has no usable time: detail.eventBody.eventTime is not an integer "
                f"({type(raw).__name__}) and the envelope time is not ISO 8601 with a zone"
            )
        when = int(parsed.timestamp() * 1000)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if when - now_ms > MAX_FUTURE_SKEW_MS:
        raise InvalidInput(f"the event time is {(when - now_ms) / 1000:.0f} s in the future")
    return when


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
    read_at = detail.get("readAtMs")
    if read_at is not None and (isinstance(read_at, bool) or not isinstance(read_at, int)):
        raise InvalidInput("detail.readAtMs must be epoch milliseconds (an integer)")
    replay = detail.get("replay", False)
    if not isinstance(replay, bool):
        raise InvalidInput("detail.replay must be a boolean")
    return AttributesDetail(
        conversation_id=_uuid(detail.get("conversationId"), "detail.conversationId"),
        participant_id=_uuid(detail.get("participantId"), "detail.participantId"),
        media_type=_media(detail.get("mediaType"), "detail.mediaType"),
        attributes=validate_attributes(detail.get("attributes"), limits),
        correlation_id=_text(detail.get("correlationId"), event_id),
        source_event_id=_text(detail.get("sourceEventId"), event_id),
        read_at_ms=read_at,
        based_on=_based_on(detail.get("basedOn", {})),
        replay=replay,
        context=_context(detail.get("context", {})),
    )


def _based_on(value: Any) -> dict[str, str | None]:
    """key -> the value a write replaces, None for "absent"."""
    based_on = _object(value, "detail.basedOn")
    if not all(isinstance(v, str | None) for v in based_on.values()) or len(based_on) > 500:
        raise InvalidInput("detail.basedOn must map attribute names to strings or null")
    return {str(k): v for k, v in based_on.items()}


def _context(value: Any) -> dict[str, str]:
    context = _object(value, "detail.context")
    if not all(isinstance(v, str) and len(v) <= 256 for v in context.values()):
        raise InvalidInput("detail.context must map field names to short strings")
    return {str(k): str(v) for k, v in context.items()}


def without_other_attributes(event: Any, keep: Any) -> Any:
    """A Genesys event with its `eventBody.attributes` cut down to the keys in `keep` (a
    NameList): what a dead letter may hold of the customer's data."""
    if not isinstance(event, Mapping) or not isinstance(event.get("detail"), Mapping):
        return event
    body = event["detail"].get("eventBody")
    if not isinstance(body, Mapping) or not isinstance(body.get("attributes"), Mapping):
        return event
    kept = {k: v for k, v in body["attributes"].items() if k in keep}
    return {**event, "detail": {**event["detail"], "eventBody": {**body, "attributes": kept}}}


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
