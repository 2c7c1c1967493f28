"""The three steps of a sync, and the one write path, as functions of their inputs and
adapters."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from attribute_bridge.budget import Budget
from attribute_bridge.call_context import external_payload, select_context
from attribute_bridge.config import Settings
from attribute_bridge.conversation_state import ConversationState
from attribute_bridge.domain import (
    changed_attributes,
    input_fingerprint,
    map_external_answer,
    media_type_of,
    pick_participant,
    purposes_of,
)
from attribute_bridge.errors import NotFound
from attribute_bridge.events import AttributesDetail, ConversationEvent
from attribute_bridge.genesys.client import Conversation, Participant, to_conversation
from attribute_bridge.write_rules import WriteDecision, check_keys, decide_write


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


class Genesys(ConversationReader, AttributeWriter, Protocol): ...


class ExternalSync(Protocol):
    def sync(
        self, payload: dict[str, Any], budget: Budget, idempotency_key: str | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class StepResult:
    """What a step did. `outcome` names it for logs, metrics and the pipeline."""

    # fetched | synced | no_change | patched | refused | stale | dropped | not_found
    outcome: str
    detail: AttributesDetail | None = None
    reason: str = ""
    refused: dict[str, str] = field(default_factory=dict)  # key -> why it was not written
    warnings: tuple[str, ...] = ()  # best-effort work that failed after the write
    capped: bool = False  # MaxSyncsPerConversation reached: a loop that escaped, stopped


def now_in_ms() -> int:
    return int(time.time() * 1000)


def read_conversation(
    genesys: ConversationReader, conversation_id: str, media_type: str | None, budget: Budget
) -> Conversation:
    """One read, media-aware when the media is known; the generic endpoint otherwise."""
    known = media_type if media_type and media_type != "UNKNOWN" else ""
    model = genesys.get_conversation(conversation_id, known, budget)
    return to_conversation(model, known or media_type_of(model))


def read_and_remember(
    genesys: ConversationReader,
    state: ConversationState,
    conversation_id: str,
    media_type: str | None,
    budget: Budget,
) -> Conversation:
    """Read the conversation and remember its participants' purposes, so that later
    events and writes for it need no read to know who is the customer."""
    conversation = read_conversation(genesys, conversation_id, media_type, budget)
    state.remember_participants(conversation.id, conversation.media_type, purposes_of(conversation))
    return conversation


def fetch_attributes(
    event: ConversationEvent,
    genesys: ConversationReader,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
    now_ms: int | None = None,
) -> StepResult:
    now_ms = now_in_ms() if now_ms is None else now_ms
    if event.event_time_ms is not None:
        age = (now_ms - event.event_time_ms) / 1000
        if age > settings.max_event_age_seconds:
            # Genesys redelivers for up to 4 days; attributes written after the
            # conversation are not kept by Analytics, so old events are dropped, loudly.
            return StepResult("dropped", reason=f"event is {age:.0f} s old")
    if event.media_type is not None and event.media_type not in settings.handled_media_types:
        return StepResult("dropped", reason=f"media type {event.media_type} is not handled")
    if event.attributes is not None and event.participant_id is not None:
        return _fetched_from_attributes_event(
            event, event.attributes, event.participant_id, genesys, state, settings, budget
        )
    if settings.context_only and _says_customer_leg(event):
        return _fetched_from_context(event, state, settings, now_ms)
    try:
        conversation = read_and_remember(
            genesys, state, event.conversation_id, event.media_type, budget
        )
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
    if participant.purpose not in settings.writable_purposes:
        return StepResult("dropped", reason=_purpose_reason(participant.purpose))
    return StepResult(
        "fetched", _fetched(event, conversation.media_type, participant, now_ms, settings)
    )


def _fetched_from_attributes_event(
    event: ConversationEvent,
    attributes: dict[str, str],
    participant_id: str,
    genesys: ConversationReader,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
) -> StepResult:
    """The `attributes` topic carries the attributes (assumed: the full set, GENESYS.md
    says UNKNOWN) but no purpose: the participant record says whose they are, and only a
    participant not seen yet costs a read."""
    record = state.participant(event.conversation_id, participant_id)
    if record is None:
        try:
            conversation = read_and_remember(
                genesys, state, event.conversation_id, event.media_type, budget
            )
            participant = pick_participant(conversation, participant_id)
        except NotFound as missing:
            return StepResult("not_found", reason=str(missing))
        if participant.purpose not in settings.writable_purposes:
            return StepResult("dropped", reason=_purpose_reason(participant.purpose))
        return StepResult(
            "fetched",
            _fetched(event, conversation.media_type, participant, now_in_ms(), settings),
        )
    if record.purpose not in settings.writable_purposes:
        return StepResult("dropped", reason=_purpose_reason(record.purpose))
    inputs = settings.sync_inputs.select(attributes)
    if not inputs:
        # Nothing the external system may look the customer up by (or the event holds only
        # the changed keys, an UNKNOWN of GENESYS.md): asking it with no input cannot help.
        return StepResult("no_change", reason="the event holds no allow-listed input")
    if record.fingerprint == input_fingerprint(inputs):
        # What ends the write -> `attributes` event -> sync loop, whatever the CRM answers.
        return StepResult("no_change", reason="allow-listed inputs unchanged since the last sync")
    participant = Participant(participant_id, record.purpose, None, attributes)
    media_type = event.media_type or record.media_type or "UNKNOWN"
    read_at = None if event.event_time_ms is None else min(event.event_time_ms, now_in_ms())
    detail = _fetched(event, media_type, participant, read_at, settings)
    return StepResult("fetched", detail)


# The one topic whose name says who the participant is and that it is live. Any other
# (an `attributes` event, customer.end, user.start, a sync request) is read as before.
CUSTOMER_START = "customer.start"
CUSTOMER = "customer"


def _says_customer_leg(event: ConversationEvent) -> bool:
    return (
        event.kind == CUSTOMER_START
        and event.participant_id is not None
        and event.media_type not in (None, "UNKNOWN")
    )


def _fetched_from_context(
    event: ConversationEvent, state: ConversationState, settings: Settings, now_ms: int
) -> StepResult:
    """Context-only mode (Settings.context_only): the external system gets no input
    attributes, only the event's call context, so the conversation is not read and a synced
    customer.start costs one Genesys request (the PATCH) instead of two.

    What stands in for the read: the participant is the one the event names; the topic
    says it is a customer leg (the rule takes the Genesys partner source's events; who else
    could send one: docs/SECURITY.md), unless a read already recorded another purpose; the
    media type is the event's. The purpose is
    remembered, so PatchAttributes checks WritablePurposes without a read either.

    What it gives up (README "Context-only mode"): `based_on` is empty, so there is no
    "nothing changed" check (every answered writable key is written) and the values a write
    replaces are taken as absent: a late, replayed or overtaken write re-reads the
    participant (the rare path) and fills only keys still absent, never replacing a value
    someone set meanwhile. No ended-conversation check: a PATCH to an ended conversation
    ends as it does today (not_found, or written and not kept by Analytics)."""
    participant_id = event.participant_id or ""  # _says_customer_leg: always set here
    media_type = event.media_type or "UNKNOWN"
    record = state.participant(event.conversation_id, participant_id)
    purpose = CUSTOMER if record is None else record.purpose
    if purpose not in settings.writable_purposes:
        return StepResult("dropped", reason=_purpose_reason(purpose))
    if record is None:
        state.remember_participants(event.conversation_id, media_type, {participant_id: purpose})
    participant = Participant(participant_id, purpose, None, {})
    # As a read made now would be: a later write of these keys by this stack (the API's)
    # makes this one compare-and-set, exactly as in the read mode.
    detail = _fetched(event, media_type, participant, now_ms, settings)
    return StepResult("fetched", detail, reason="context-only: no Genesys read")


def _fetched(
    event: ConversationEvent,
    media_type: str,
    participant: Participant,
    read_at_ms: int | None,
    config: Settings,
) -> AttributesDetail:
    return AttributesDetail(
        conversation_id=event.conversation_id,
        participant_id=participant.id,
        media_type=media_type,
        # Only what the next step needs: the inputs the external system may receive, and
        # the current values of the keys a write may replace (never the other attributes).
        attributes=config.sync_inputs.select(participant.attributes),
        based_on=dict(config.writable_attributes.select(participant.attributes)),
        read_at_ms=read_at_ms,
        correlation_id=event.correlation_id,
        source_event_id=event.source_event_id,
        context=select_context(config.context_fields, event.context),
    )


def _purpose_reason(purpose: str) -> str:
    return f"participant is {purpose or 'of no purpose'}: not a purpose this stack writes to"


def sync_external(
    fetched: AttributesDetail,
    external: ExternalSync,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
) -> StepResult:
    """Send the allowed attributes out; keep only the writable keys of the answer whose
    values change. No change -> no event."""
    syncs = state.count_sync(fetched.conversation_id)
    if syncs > settings.max_syncs_per_conversation:
        return StepResult(
            "dropped",
            reason=(
                f"sync cap: {syncs} syncs of this conversation this hour, at most "
                f"{settings.max_syncs_per_conversation} (MaxSyncsPerConversation)"
            ),
            capped=True,
        )
    payload = external_payload(fetched, settings)  # the same on the data-action path
    inputs = payload["attributes"]
    answer = external.sync(payload, budget, idempotency_key=fetched.source_event_id)
    mapped = map_external_answer(answer, settings.attribute_mapping, settings.limits)
    allowed = check_keys(mapped.attributes, settings.write_rules)
    refused = {**mapped.rejected, **allowed.refused}
    state.record_sync(fetched.conversation_id, fetched.participant_id, input_fingerprint(inputs))
    changes = changed_attributes(fetched.based_on, allowed.write)
    if not changes:
        return StepResult("no_change", refused=refused)
    resolved = AttributesDetail(
        conversation_id=fetched.conversation_id,
        participant_id=fetched.participant_id,
        media_type=fetched.media_type,
        attributes=changes,
        based_on={key: fetched.based_on.get(key) for key in changes},
        read_at_ms=fetched.read_at_ms,
        correlation_id=fetched.correlation_id,
        source_event_id=fetched.source_event_id,
    )
    return StepResult("synced", resolved, refused=refused)


def patch_attributes(
    request: AttributesDetail,
    genesys: Genesys,
    state: ConversationState,
    settings: Settings,
    budget: Budget,
    now_ms: int | None = None,
    all_or_nothing: bool = False,
) -> StepResult:
    """THE write path: every write into a conversation goes through here and the write
    rules (write_rules.decide_write). The normal path costs no Genesys read: the purpose
    comes from the participant record. A write that may be stale (older than
    MaxWriteDelaySeconds, replayed, or based on a read older than this stack's last write
    of one of its keys) re-reads the participant and writes only the keys whose value is
    still the one it replaces. `all_or_nothing` (the API): any refused key writes nothing."""
    now_ms = now_in_ms() if now_ms is None else now_ms
    keys = check_keys(request.attributes, settings.write_rules)  # no I/O: refuse early
    if not keys.write or (all_or_nothing and keys.refused):
        return StepResult("refused", reason=_refusal_reason(keys.refused), refused=keys.refused)
    record = state.participant(request.conversation_id, request.participant_id)
    # A read time from the future (a forged event, a clock ahead) counts as now: it may
    # neither skip the stale guard nor make later writes look older than it.
    read_at = None if request.read_at_ms is None else min(request.read_at_ms, now_ms)
    late = read_at is None or now_ms - read_at > settings.max_write_delay_seconds * 1000
    overtaken = record is not None and record.written_since(keys.write, read_at or 0)
    compare = request.replay or late or overtaken
    current: dict[str, str] | None = None
    media_type = request.media_type
    if record is None or compare:
        try:
            conversation = read_and_remember(
                genesys, state, request.conversation_id, request.media_type, budget
            )
            participant = pick_participant(conversation, request.participant_id)
        except NotFound as missing:
            return StepResult("not_found", reason=f"{missing} (gone?)")
        purpose, media_type = participant.purpose, conversation.media_type
        current = dict(participant.attributes) if compare else None
    else:
        purpose = record.purpose
        if media_type == "UNKNOWN":
            media_type = record.media_type or "UNKNOWN"
    decision = decide_write(
        keys.write,
        settings.write_rules,
        purpose=purpose,
        current=current,
        based_on=request.based_on,
    )
    decision = WriteDecision(decision.write, {**keys.refused, **decision.refused})
    if not decision.write or (all_or_nothing and decision.refused):
        only_stale = decision.refused and len(decision.stale) == len(decision.refused)
        return StepResult(
            "stale" if only_stale else "refused" if decision.refused else "no_change",
            reason=_refusal_reason(decision.refused) or "nothing to write",
            refused=decision.refused,
        )
    try:
        genesys.patch_attributes(
            request.conversation_id,
            request.participant_id,
            media_type,
            decision.write,
            budget,
        )
    except NotFound:
        return StepResult("not_found", reason="conversation or participant not found (gone)")
    warnings: tuple[str, ...] = ()
    try:
        # The write's own time is the read it is based on: a write asked for later (or based
        # on a later read) may follow it; one based on an earlier read must compare-and-set.
        as_of = now_ms if read_at is None else read_at  # the read the write is based on
        state.record_writes(request.conversation_id, request.participant_id, decision.write, as_of)
    except Exception as error:  # written already: never make the event retry the PATCH
        warnings = (f"could not record the write: {type(error).__name__}",)
    written = AttributesDetail(
        conversation_id=request.conversation_id,
        participant_id=request.participant_id,
        media_type=media_type,
        attributes=decision.write,
        correlation_id=request.correlation_id,
        source_event_id=request.source_event_id,
        read_at_ms=now_ms,
    )
    return StepResult(
        "patched",
        written,
        reason=_refusal_reason(decision.refused),
        refused=decision.refused,
        warnings=warnings,
    )


def precheck_write(
    request: AttributesDetail, state: ConversationState, settings: Settings
) -> StepResult | None:
    """What the write path would refuse without a Genesys call (keys and values, and the
    purpose of a participant already seen): a queued write is answered at once, not
    accepted and refused later. None: nothing to refuse yet."""
    keys = check_keys(request.attributes, settings.write_rules)
    refused = dict(keys.refused)
    if not refused:
        record = state.participant(request.conversation_id, request.participant_id)
        if record is not None:
            refused = decide_write(keys.write, settings.write_rules, purpose=record.purpose).refused
    if not refused:
        return None
    return StepResult("refused", reason=_refusal_reason(refused), refused=refused)


def _refusal_reason(refused: dict[str, str]) -> str:
    if not refused:
        return ""
    shown = ", ".join(f"{key}: {why}" for key, why in sorted(refused.items())[:5])
    more = f" (+{len(refused) - 5} more)" if len(refused) > 5 else ""
    return f"not written: {shown}{more}"
