"""The three steps of a sync, as functions of their inputs and adapters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from attribute_bridge.budget import Budget
from attribute_bridge.call_context import external_payload, select_context
from attribute_bridge.config import Settings
from attribute_bridge.domain import (
    changed_attributes,
    map_external_answer,
    media_type_of,
    pick_participant,
)
from attribute_bridge.errors import NotFound
from attribute_bridge.events import AttributesDetail, ConversationEvent
from attribute_bridge.genesys.client import Conversation, to_conversation
from attribute_bridge.validation import validate_attributes


class ConversationReader(Protocol):
    def get_conversation(self, conversation_id: str, media_type: str, budget: Budget) -> Any: ...


class AttributeWriter(Protocol):
    def patch_attributes(
        self,
        conversation_id: str,
        participant_id: str,
        media_type: str,
        attributes: dict[str, str],
        budget: Budget,
    ) -> None: ...


class ExternalSync(Protocol):
    def sync(self, payload: dict[str, Any], budget: Budget) -> Any: ...


@dataclass(frozen=True)
class StepResult:
    """What a step did. `outcome` names it for logs, metrics and the pipeline."""

    outcome: str  # fetched | synced | no_change | patched | dropped | not_found
    detail: AttributesDetail | None = None
    reason: str = ""
    rejected: dict[str, str] = field(default_factory=dict)


def read_conversation(
    genesys: ConversationReader, conversation_id: str, media_type: str | None, budget: Budget
) -> Conversation:
    """One read, media-aware when the media is known; the generic endpoint otherwise."""
    model = genesys.get_conversation(conversation_id, media_type or "", budget)
    return to_conversation(model, media_type or media_type_of(model))


def fetch_attributes(
    event: ConversationEvent,
    genesys: ConversationReader,
    settings: Settings,
    budget: Budget,
    now_ms: int | None = None,
) -> StepResult:
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if event.event_time_ms is not None:
        age = (now_ms - event.event_time_ms) / 1000
        if age > settings.max_event_age_seconds:
            # Genesys redelivers for up to 4 days; attributes written after the
            # conversation are not kept by Analytics, so old events are dropped, loudly.
            return StepResult("dropped", reason=f"event is {age:.0f} s old")
    if event.media_type is not None and event.media_type not in settings.handled_media_types:
        return StepResult("dropped", reason=f"media type {event.media_type} is not handled")
    if event.attributes is not None and event.participant_id is not None:
        # The `attributes` topic carries the attributes: no need to read the conversation.
        detail = AttributesDetail(
            conversation_id=event.conversation_id,
            participant_id=event.participant_id,
            media_type=event.media_type or "UNKNOWN",
            attributes=event.attributes,
            correlation_id=event.correlation_id,
            source_event_id=event.source_event_id,
            context=select_context(settings.context_fields, event.context),
        )
        return StepResult("fetched", detail)
    try:
        conversation = read_conversation(genesys, event.conversation_id, event.media_type, budget)
    except NotFound:
        return StepResult("not_found", reason="conversation not found (gone)")
    if conversation.ended:
        return StepResult("dropped", reason="conversation has ended")
    try:
        participant = pick_participant(conversation, event.participant_id)
    except NotFound as missing:
        return StepResult("not_found", reason=str(missing))
    if participant.ended:
        return StepResult("dropped", reason="participant has disconnected")
    detail = AttributesDetail(
        conversation_id=conversation.id,
        participant_id=participant.id,
        media_type=conversation.media_type,
        attributes=dict(participant.attributes),
        correlation_id=event.correlation_id,
        source_event_id=event.source_event_id,
        context=select_context(settings.context_fields, event.context),
    )
    return StepResult("fetched", detail)


def sync_external(
    fetched: AttributesDetail, external: ExternalSync, settings: Settings, budget: Budget
) -> StepResult:
    """Send the allowed attributes out; keep only the answer's keys whose values change.
    No change -> no event: this also ends the write -> `attributes` event -> sync loop."""
    payload = external_payload(fetched, settings)  # the same on the data-action path
    answer = external.sync(payload, budget)
    mapped = map_external_answer(answer, settings.attribute_mapping, settings.limits)
    changes = changed_attributes(fetched.attributes, mapped.attributes)
    if not changes:
        return StepResult("no_change", rejected=mapped.rejected)
    resolved = AttributesDetail(
        conversation_id=fetched.conversation_id,
        participant_id=fetched.participant_id,
        media_type=fetched.media_type,
        attributes=changes,
        correlation_id=fetched.correlation_id,
        source_event_id=fetched.source_event_id,
    )
    return StepResult("synced", resolved, rejected=mapped.rejected)


def patch_attributes(
    request: AttributesDetail, genesys: AttributeWriter, settings: Settings, budget: Budget
) -> StepResult:
    attributes = validate_attributes(request.attributes, settings.limits)
    if not attributes:
        return StepResult("no_change", reason="nothing to write")
    try:
        genesys.patch_attributes(
            request.conversation_id,
            request.participant_id,
            request.media_type,
            attributes,
            budget,
        )
    except NotFound:
        return StepResult("not_found", reason="conversation or participant not found (gone)")
    return StepResult("patched", request)
