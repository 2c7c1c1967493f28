"""Plain functions: which participant, which attributes leave Genesys, what changes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from attribute_bridge.errors import ExternalSystemError, NotFound
from attribute_bridge.genesys.client import Conversation, Participant
from attribute_bridge.validation import AttributeLimits


def pick_participant(conversation: Conversation, participant_id: str | None = None) -> Participant:
    """The given participant, else the customer: the newest one still connected when
    there are several (a transfer or a reconnect adds customer legs)."""
    if participant_id is not None:
        for participant in conversation.participants:
            if participant.id == participant_id:
                return participant
        raise NotFound(f"participant {participant_id} is not in conversation {conversation.id}")
    customers = [p for p in conversation.participants if p.purpose == "customer"]
    if not customers:
        raise NotFound(f"conversation {conversation.id} has no customer participant")
    live = [p for p in customers if not p.ended]
    return (live or customers)[-1]


def media_type_of(conversation_model: Any) -> str:
    """Media of a generic Conversation, from its participants' communications."""
    for participant in conversation_model.participants or []:
        if getattr(participant, "calls", None):
            return "VOICE"
        if getattr(participant, "messages", None):
            return "MESSAGE"
    for participant in conversation_model.participants or []:
        for name, media in (("chats", "CHAT"), ("emails", "EMAIL"), ("callbacks", "CALLBACK")):
            if getattr(participant, name, None):
                return media
    return "UNKNOWN"


def select_allowed(attributes: Mapping[str, str], allowed: Iterable[str]) -> dict[str, str]:
    """Only allow-listed attributes leave Genesys; an empty allow-list sends none."""
    allowed_keys = set(allowed)
    return {key: value for key, value in attributes.items() if key in allowed_keys}


def changed_attributes(
    current: Mapping[str, str | None], proposed: Mapping[str, str]
) -> dict[str, str]:
    """The proposed keys whose values differ from the participant's current ones."""
    return {key: value for key, value in proposed.items() if current.get(key) != value}


def input_fingerprint(inputs: Mapping[str, str]) -> str:
    """Identifies the allow-listed inputs a sync was made with: a sync whose inputs have
    the same fingerprint as the last one would only ask the external system again."""
    canonical = json.dumps(dict(sorted(inputs.items())), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def purposes_of(conversation: Conversation) -> dict[str, str]:
    return {participant.id: participant.purpose for participant in conversation.participants}


@dataclass(frozen=True)
class MappedAnswer:
    attributes: dict[str, str]
    rejected: dict[str, str] = field(default_factory=dict)  # key -> why it was not kept


def map_external_answer(
    answer: Any, mapping: Mapping[str, str], limits: AttributeLimits
) -> MappedAnswer:
    """External answer -> attributes to write.

    Default: the answer's `attributes` object. With a mapping (attribute -> JMESPath), each
    expression is evaluated on the whole answer. Numbers and booleans become strings;
    null means "no value"; objects, lists and oversized values are rejected by key (and
    reported) so one bad field does not block the others.
    """
    if not isinstance(answer, Mapping):
        raise ExternalSystemError(
            f"external system answered a JSON {type(answer).__name__}, not an object",
            retryable=False,
        )
    rejected: dict[str, str] = {}
    if mapping:
        import jmespath

        raw = {}
        for key, expression in mapping.items():
            try:
                raw[key] = jmespath.search(expression, answer)
            except jmespath.exceptions.JMESPathError as error:
                # e.g. length(items) on an answer whose `items` is a number: that key only
                rejected[key] = f"mapping {expression!r} failed: {type(error).__name__}"
    else:
        found = answer.get("attributes", {})
        if not isinstance(found, Mapping):
            raise ExternalSystemError(
                "external answer's `attributes` is not an object", retryable=False
            )
        raw = dict(found)
    kept: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.strip() or len(key) > limits.max_key_length:
            rejected[str(key)[:64]] = "invalid key"
        elif value is None:
            continue
        elif isinstance(value, str | int | float):  # bool too: "true" / "false"
            text = value if isinstance(value, str) else json.dumps(value)
            if len(text) > limits.max_value_length:
                rejected[key] = f"value of {len(text)} characters"
            else:
                kept[key] = text
        else:
            rejected[key] = f"{type(value).__name__} value"
    if len(kept) > limits.max_keys:
        for key in sorted(kept)[limits.max_keys :]:
            rejected[key] = "too many attributes"
            del kept[key]
    return MappedAnswer(kept, rejected)
