"""What the external system is told about a conversation: the sync payload, and the call
context fields (SyncContextFields) it may receive.

Context fields are personal data (a caller's number, a messaging address): none leave
Genesys unless the deployment names them, and only the names in KNOWN_CONTEXT_FIELDS can
be named (the template's AllowedPattern refuses others at deploy time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from attribute_bridge.config import Settings
    from attribute_bridge.events import AttributesDetail

# Conversation fields as Genesys names them in conversation event bodies (customer.start:
# ani, dnis, direction, addressFrom, addressTo, messageType, externalContactId; user.start
# adds queueId) and as a flow can pass them to a data action.
KNOWN_CONTEXT_FIELDS = (
    "ani",
    "dnis",
    "direction",
    "queueId",
    "externalContactId",
    "addressFrom",
    "addressTo",
    "messageType",
)
MAX_CONTEXT_VALUE_LENGTH = 256


def select_context(allowed: Iterable[str], source: Mapping[str, Any] | None) -> dict[str, str]:
    """Only the allowed, known fields of `source` that hold a usable string (non-empty, at
    most MAX_CONTEXT_VALUE_LENGTH characters); everything else is left behind."""
    if not source:
        return {}
    wanted = set(allowed) & set(KNOWN_CONTEXT_FIELDS)
    return {
        name: value
        for name in KNOWN_CONTEXT_FIELDS
        if name in wanted
        and isinstance(value := source.get(name), str)
        and 0 < len(value) <= MAX_CONTEXT_VALUE_LENGTH
    }


def unknown_context_fields(names: Iterable[str]) -> list[str]:
    """Names that are not context fields: a configuration error when configured."""
    return sorted(set(names) - set(KNOWN_CONTEXT_FIELDS))


def external_payload(detail: AttributesDetail, settings: Settings) -> dict[str, Any]:
    """The body POSTed to the external system, the same on the asynchronous chain
    (SyncExternal) and on the data-action path (ResolveAttributes)."""
    return {
        "conversationId": detail.conversation_id,
        "participantId": detail.participant_id,
        "mediaType": detail.media_type,
        "correlationId": detail.correlation_id,
        "attributes": settings.sync_inputs.select(detail.attributes),
        "context": select_context(settings.context_fields, detail.context),
    }
