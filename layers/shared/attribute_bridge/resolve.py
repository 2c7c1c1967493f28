"""Resolve: the data-action path. A flow asks, while the customer waits, for the external
system's answer about its conversation, and optionally has it written to the participant.

The same payload (call_context.external_payload), mapping (domain.map_external_answer)
and allow-lists as SyncExternal; writes go through use_cases.patch_attributes, the one
write path and its rules. The answer is one flat object with a fixed set of keys (the
action's output contract, frozen once published): the mapped attributes travel as a JSON
string, `attributesJson`, because the mapping is deployment configuration that may change
while a published contract may not, and because a data action's output may not hold
nested arrays. Every failure this module understands is an answer (`ok`, `errorCode`);
only an unexpected one raises (Architect then takes the action's Failure path).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from attribute_bridge import domain, use_cases
from attribute_bridge.budget import Budget, LambdaContextLike
from attribute_bridge.call_context import KNOWN_CONTEXT_FIELDS, external_payload, select_context
from attribute_bridge.config import Settings
from attribute_bridge.conversation_state import ConversationState
from attribute_bridge.errors import (
    BridgeError,
    ConfigurationError,
    ExternalSystemError,
    GenesysError,
    InvalidAttributes,
    InvalidInput,
    NotFound,
    TokenUnavailable,
    Unauthorized,
)
from attribute_bridge.events import KNOWN_MEDIA_TYPES, AttributesDetail
from attribute_bridge.use_cases import ExternalSync, Genesys
from attribute_bridge.validation import is_uuid

# Input fields with a meaning of their own; any other field is an input attribute, used
# only when it is on the SyncAllowedAttributes list.
CONVERSATION_ID, PARTICIPANT_ID, MEDIA_TYPE, WRITE = (
    "conversationId",
    "participantId",
    "mediaType",
    "write",
)
KNOWN_INPUTS = frozenset(
    {CONVERSATION_ID, PARTICIPANT_ID, MEDIA_TYPE, WRITE, *KNOWN_CONTEXT_FIELDS}
)
# The output contract: every key, always present, never null.
OUTPUT_KEYS = (
    "ok",
    "status",
    "errorCode",
    "errorMessage",
    "conversationId",
    "participantId",
    "attributesJson",
    "attributeCount",
    "written",
    "writtenKeys",
    "rejectedKeys",
    "correlationId",
)
MAX_ERROR_MESSAGE = 256
MAX_INPUT_VALUE_LENGTH = 256
BUDGET_RESERVE_SECONDS = 0.3  # kept for publishing the Patched event and answering
LAMBDA_MARGIN_SECONDS = 0.5  # never plan past the function's own timeout


@dataclass(frozen=True)
class ResolveRequest:
    """The action's input, validated."""

    conversation_id: str
    participant_id: str | None
    media_type: str | None
    write: bool
    context: dict[str, str]
    attributes: dict[str, str]  # allow-listed input attributes
    ignored: tuple[str, ...] = ()  # input names neither known nor allow-listed


@dataclass(frozen=True)
class Resolution:
    """What happened, and the flat answer made of it (`answer()`)."""

    status: str  # resolved | written | unchanged | write_failed | failed
    conversation_id: str
    participant_id: str
    correlation_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    written: AttributesDetail | None = None
    write_refused: dict[str, str] = field(default_factory=dict)  # key -> why not written
    error_code: str = ""
    error_message: str = ""
    ignored: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The attributes were resolved (whatever happened to the write)."""
        return self.status != "failed"

    def answer(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "errorCode": self.error_code,
            "errorMessage": self.error_message[:MAX_ERROR_MESSAGE],
            "conversationId": self.conversation_id,
            "participantId": self.participant_id,
            "attributesJson": json.dumps(
                self.attributes, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            ),
            "attributeCount": len(self.attributes),
            "written": self.written is not None,
            "writtenKeys": ",".join(sorted(self.written.attributes)) if self.written else "",
            "rejectedKeys": ",".join(sorted(self.rejected)),
            "correlationId": self.correlation_id,
        }


def budget_for(settings: Settings, context: LambdaContextLike | None) -> Budget:
    """ResolveBudgetSeconds, or less when the invocation has less time left."""
    seconds = settings.resolve_budget_seconds
    if context is not None:
        left = context.get_remaining_time_in_millis() / 1000.0 - LAMBDA_MARGIN_SECONDS
        seconds = min(seconds, left)
    return Budget.seconds(max(0.0, seconds), reserve=BUDGET_RESERVE_SECONDS)


# ---------------------------------------------------------------------------- input


def _optional_text(data: Mapping[str, Any], name: str, errors: list[str]) -> str | None:
    """A string field; empty and null both mean absent (Velocity's `#if` and Architect's
    NOT_SET disagree on empty strings: both give the same request here)."""
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        errors.append(f"{name} must be a string, got {type(value).__name__}")
        return None
    if len(value) > MAX_INPUT_VALUE_LENGTH:
        errors.append(f"{name} is longer than {MAX_INPUT_VALUE_LENGTH} characters")
        return None
    return value


def parse_input(data: Any, settings: Settings) -> ResolveRequest:
    """The flat input (the Lambda event, or the API's body plus its path) -> a request."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"the input must be a JSON object, got {type(data).__name__}")
    errors: list[str] = []
    conversation_id = data.get(CONVERSATION_ID)
    if not is_uuid(conversation_id):
        errors.append(f"{CONVERSATION_ID} must be a UUID")
    participant_id = _optional_text(data, PARTICIPANT_ID, errors)
    if participant_id is not None and not is_uuid(participant_id):
        errors.append(f"{PARTICIPANT_ID} must be a UUID")
    media_type = _optional_text(data, MEDIA_TYPE, errors)
    if media_type is not None and media_type.upper() not in KNOWN_MEDIA_TYPES:
        errors.append(f"{MEDIA_TYPE} is not a Genesys media type")
    write = data.get(WRITE, False)
    if write is None:
        write = False
    if not isinstance(write, bool):
        errors.append(f"{WRITE} must be a boolean, got {type(write).__name__}")
    context = {
        name: value
        for name in KNOWN_CONTEXT_FIELDS
        if (value := _optional_text(data, name, errors)) is not None
    }
    allowed = set(settings.allowed_attributes) - KNOWN_INPUTS
    attributes: dict[str, str] = {}
    ignored: list[str] = []
    for name in sorted(set(data) - KNOWN_INPUTS, key=str):
        if name in allowed:
            value = data[name]
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                errors.append(f"input attribute {name} must be a string")
            elif len(value) > settings.limits.max_value_length:
                errors.append(
                    f"input attribute {name} is longer than {settings.limits.max_value_length}"
                )
            else:
                attributes[name] = value
        else:
            ignored.append(str(name)[:64])
    if errors:
        raise InvalidInput("; ".join(errors[:5]), errors)
    return ResolveRequest(
        conversation_id=str(conversation_id).lower(),
        participant_id=participant_id.lower() if participant_id else None,
        media_type=media_type.upper() if media_type else None,
        write=bool(write),
        context=context,
        attributes=attributes,
        ignored=tuple(ignored),
    )


# ---------------------------------------------------------------------------- the use case


def resolve(
    data: Any,
    genesys: Genesys,
    external: ExternalSync,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
    correlation_id: str,
) -> Resolution:
    """Input -> answer. Understood failures become a failed Resolution, never an error."""
    given = data.get(CONVERSATION_ID) if isinstance(data, Mapping) else None
    conversation_id = str(given).lower() if is_uuid(given) else ""  # never echo junk
    try:
        request = parse_input(data, settings)
    except InvalidInput as error:
        return _failed(conversation_id, "", correlation_id, "INVALID_INPUT", error)
    try:
        return _resolve(request, genesys, external, state, settings, budget, correlation_id)
    except BridgeError as error:
        code = _error_code(error, budget)
        return _failed(
            request.conversation_id,
            request.participant_id or "",
            correlation_id,
            code,
            error,
            request.ignored,
        )


def _resolve(
    request: ResolveRequest,
    genesys: Genesys,
    external: ExternalSync,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
    correlation_id: str,
) -> Resolution:
    if not settings.external_url:
        raise ConfigurationError("the external system's URL is not configured")
    participant_id, media_type = request.participant_id, request.media_type
    current: dict[str, str] | None = None
    read_at_ms: int | None = None
    if participant_id is None or request.write:
        # The customer's id is needed, or the current values: what a write would change.
        read_at_ms = use_cases.now_in_ms()
        conversation = use_cases.read_and_remember(
            genesys, state, request.conversation_id, media_type, budget
        )
        participant = domain.pick_participant(conversation, participant_id)
        participant_id, media_type = participant.id, conversation.media_type
        current = dict(participant.attributes)
    asked = AttributesDetail(
        conversation_id=request.conversation_id,
        participant_id=participant_id,
        media_type=media_type or "UNKNOWN",
        # The participant's values, and over them what the flow passed (it may know better).
        attributes={**settings.sync_inputs.select(current or {}), **request.attributes},
        correlation_id=correlation_id,
        source_event_id=correlation_id,
        context=select_context(settings.context_fields, request.context),
    )
    answer = external.sync(
        external_payload(asked, settings), budget, idempotency_key=correlation_id
    )
    mapped = domain.map_external_answer(answer, settings.attribute_mapping, settings.limits)
    resolved = Resolution(
        status="resolved",
        conversation_id=request.conversation_id,
        participant_id=participant_id,
        correlation_id=correlation_id,
        attributes=mapped.attributes,
        rejected=mapped.rejected,
        ignored=request.ignored,
    )
    if not request.write:
        return resolved
    return _write(resolved, asked, current or {}, read_at_ms, genesys, state, settings, budget)


def _write(
    resolved: Resolution,
    asked: AttributesDetail,
    current: dict[str, str],
    read_at_ms: int | None,
    genesys: Genesys,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
) -> Resolution:
    changes = domain.changed_attributes(current, resolved.attributes)
    if not changes:
        return _replace(resolved, status="unchanged")
    request = AttributesDetail(
        conversation_id=asked.conversation_id,
        participant_id=asked.participant_id,
        media_type=asked.media_type,
        attributes=changes,
        correlation_id=asked.correlation_id,
        source_event_id=asked.source_event_id,
        # what the stale guard compares against: the values this write replaces, as read
        based_on={key: current.get(key) for key in changes},
        read_at_ms=read_at_ms,
    )
    try:
        result = use_cases.patch_attributes(request, genesys, state, settings, budget)
    except InvalidAttributes as error:
        return _replace(
            resolved, status="write_failed", error_code="WRITE_REFUSED", error_message=str(error)
        )
    except BridgeError as error:
        return _replace(
            resolved,
            status="write_failed",
            error_code="NOT_FOUND" if isinstance(error, NotFound) else "WRITE_FAILED",
            error_message=_message(error),
        )
    if result.outcome == "patched":
        return _replace(
            resolved,
            status="written",
            written=result.detail or request,
            write_refused=result.refused,
            error_message=result.reason,  # keys the rules kept back, if any
        )
    if result.outcome == "no_change":
        return _replace(resolved, status="unchanged")
    # not_found, or whatever the write rules refused (their outcome and reason say why)
    code = "NOT_FOUND" if result.outcome == "not_found" else "WRITE_REFUSED"
    return _replace(
        resolved,
        status="write_failed",
        error_code=code,
        error_message=result.reason or result.outcome,
        write_refused=result.refused,
    )


# ---------------------------------------------------------------------------- errors


def _error_code(error: BridgeError, budget: Budget) -> str:
    if isinstance(error, ConfigurationError | Unauthorized):
        return "CONFIGURATION"
    if isinstance(error, NotFound):
        return "NOT_FOUND"
    if isinstance(error, ExternalSystemError):
        if error.status in (401, 403):
            return "CONFIGURATION"
        if error.retryable:
            return "TIMEOUT" if budget.remaining() <= 0.1 else "EXTERNAL_UNAVAILABLE"
        return "EXTERNAL_REJECTED"
    if isinstance(error, GenesysError | TokenUnavailable):
        return "TIMEOUT" if budget.remaining() <= 0.1 else "GENESYS_UNAVAILABLE"
    if isinstance(error, InvalidInput):
        return "INVALID_INPUT"
    return "FAILED"


def _message(error: BaseException) -> str:
    return str(error)[:MAX_ERROR_MESSAGE]


def _failed(
    conversation_id: str,
    participant_id: str,
    correlation_id: str,
    code: str,
    error: BaseException,
    ignored: tuple[str, ...] = (),
) -> Resolution:
    return Resolution(
        status="failed",
        conversation_id=conversation_id,
        participant_id=participant_id,
        correlation_id=correlation_id,
        error_code=code,
        error_message=_message(error),
        ignored=ignored,
    )


def _replace(resolution: Resolution, **changes: Any) -> Resolution:
    return replace(resolution, **changes)
