"""The checks at the edge, on arbitrary JSON: each either answers a valid value or refuses
with the project's own error (InvalidInput; ExternalSystemError for an external answer
that is not an object). Never anything else, and nothing invalid gets through."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from attribute_bridge import domain, events, validation
from attribute_bridge.errors import ExternalSystemError, InvalidInput
from attribute_bridge.events import INCOMING_LIMITS, KNOWN_MEDIA_TYPES
from attribute_bridge.validation import AttributeLimits
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What a JSON document can hold once parsed (as Lambda hands it over). Integers within
# what json.loads accepts (Python refuses more than 4300 digits).
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
uuids = st.uuids().map(str)
# ids as they come: canonical, upper case, mixed, or almost a UUID
ids = st.one_of(
    uuids,
    uuids.map(str.upper),
    uuids.map(lambda u: u[:-1] + "?"),
    uuids.map(lambda u: u + "\n"),
    uuids.map(lambda u: u.replace("-", "")),
    st.sampled_from(["../../users/me", "a#b", "", " ", "x?y=1"]),
    json_values,
)
media = st.one_of(
    st.sampled_from(sorted(KNOWN_MEDIA_TYPES)),
    st.sampled_from(sorted(KNOWN_MEDIA_TYPES)).map(str.lower),
    st.sampled_from(["FAX", "", "vo\u0131ce", "Message"]),
    json_values,
)
attribute_maps = st.one_of(
    st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=8),
    st.dictionaries(st.text(max_size=300), st.text(max_size=300) | json_values, max_size=60),
    json_values,
)
limits = st.builds(
    AttributeLimits,
    max_keys=st.integers(0, 60),
    max_key_length=st.integers(1, 300),
    max_value_length=st.integers(0, 300),
    max_body_bytes=st.integers(2, 20_000),
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or any JSON instead of it, or nothing at all (the key left out)."""
    return st.one_of(value, value, json_values, st.just(_MISSING))


_MISSING = object()


def without_missing(document: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in document.items() if value is not _MISSING}


def assert_valid_attributes(found: Any, limits: AttributeLimits) -> None:
    assert isinstance(found, dict)
    assert len(found) <= limits.max_keys
    for key, value in found.items():
        assert isinstance(key, str) and key.strip() and len(key) <= limits.max_key_length
        assert isinstance(value, str) and len(value) <= limits.max_value_length
    assert len(json.dumps({"attributes": found}).encode()) <= limits.max_body_bytes


def assert_canonical_uuid(found: Any) -> None:
    assert isinstance(found, str) and CANONICAL_UUID.fullmatch(found)


# ---------------------------------------------------------------------------- validation


@PROPERTY
@given(attributes=attribute_maps, limits=limits)
@example(attributes={"k": "v" * 257}, limits=AttributeLimits())
@example(attributes={f"k{n}": "v" for n in range(51)}, limits=AttributeLimits())
def test_validate_attributes_answers_a_valid_map_or_invalid_input(
    attributes: Any, limits: AttributeLimits
) -> None:
    try:
        found = validation.validate_attributes(attributes, limits)
    except InvalidInput as refused:
        assert refused.errors and all(isinstance(e, str) and e for e in refused.errors)
        return
    assert_valid_attributes(found, limits)
    assert found == attributes  # valid maps pass unchanged


@PROPERTY
@given(value=ids)
@example(value=str(uuid.uuid4()).upper())
@example(value="0f8e7d6c-5b4a-4392-8172-6a5b4c3d2e1f\n")
def test_require_uuid_answers_a_lowercase_uuid_or_invalid_input(value: Any) -> None:
    try:
        found = validation.require_uuid(value, "conversationId")
    except InvalidInput as refused:
        assert "conversationId must be a UUID" in str(refused)
        return
    assert_canonical_uuid(found)
    assert isinstance(value, str) and found == value.lower()
    assert str(uuid.UUID(found)) == found


# ---------------------------------------------------------------------------- events


@st.composite
def genesys_events(draw: st.DrawFn) -> Any:
    conversation = draw(uuids)
    kind = draw(st.sampled_from(["customer.start", "attributes", "user.end", "customer.end"]))
    topic_id = draw(st.one_of(st.just(conversation), st.just(conversation.upper()), ids))
    body = without_missing(
        {
            "conversationId": draw(maybe(st.one_of(st.just(conversation), ids))),
            "participantId": draw(maybe(ids)),
            "mediaType": draw(maybe(media)),
            "communications": draw(
                maybe(st.lists(st.fixed_dictionaries({"mediaType": media}), max_size=2))
            ),
            "attributes": draw(maybe(attribute_maps)),
            "eventTime": draw(maybe(st.integers(0, 2**45))),
        }
    )
    detail = without_missing(
        {
            "topicName": draw(
                maybe(st.just(f"v2.detail.events.conversation.{topic_id}.{kind}") | st.text())
            ),
            "eventBody": draw(st.one_of(st.just(body), st.just(body), json_values)),
            "metadata": draw(maybe(st.fixed_dictionaries({"CorrelationId": json_values}))),
        }
    )
    envelope = without_missing(
        {
            "id": draw(maybe(uuids)),
            "detail-type": draw(
                maybe(st.sampled_from(["ParticipantAttributesSyncRequested", "x"]))
            ),
            "detail": draw(st.one_of(st.just(detail), st.just(detail), json_values)),
        }
    )
    return draw(st.one_of(st.just(envelope), st.just(envelope), json_values))


@st.composite
def sync_requests(draw: st.DrawFn) -> Any:
    detail = without_missing(
        {
            "conversationId": draw(maybe(ids)),
            "participantId": draw(maybe(ids)),
            "mediaType": draw(maybe(media)),
            "correlationId": draw(maybe(st.text(max_size=300))),
        }
    )
    return {
        "id": draw(uuids),
        "detail-type": "ParticipantAttributesSyncRequested",
        "detail": detail,
    }


@PROPERTY
@given(event=st.one_of(genesys_events(), sync_requests(), json_values))
def test_parse_conversation_event_answers_a_valid_event_or_invalid_input(event: Any) -> None:
    try:
        found = events.parse_conversation_event(event)
    except InvalidInput as refused:
        assert str(refused)
        return
    assert_canonical_uuid(found.conversation_id)
    if found.participant_id is not None:
        assert_canonical_uuid(found.participant_id)
    assert found.media_type is None or found.media_type in KNOWN_MEDIA_TYPES
    if found.attributes is not None:
        assert found.kind == "attributes"
        assert_valid_attributes(found.attributes, INCOMING_LIMITS)
    assert isinstance(found.correlation_id, str) and 0 < len(found.correlation_id) <= 256
    assert isinstance(found.source_event_id, str) and found.source_event_id
    assert found.event_time_ms is None or isinstance(found.event_time_ms, int)
    if found.kind != "sync.requested":
        topic = event["detail"]["topicName"]
        assert topic.split(".")[4].lower() == found.conversation_id  # the topic agrees


@st.composite
def app_events(draw: st.DrawFn) -> Any:
    detail = without_missing(
        {
            "conversationId": draw(maybe(ids)),
            "participantId": draw(maybe(ids)),
            "mediaType": draw(maybe(media)),
            "attributes": draw(maybe(attribute_maps)),
            "correlationId": draw(maybe(st.text(max_size=300))),
            "sourceEventId": draw(maybe(st.text(max_size=300))),
        }
    )
    envelope = without_missing(
        {"id": draw(maybe(uuids)), "detail": draw(st.one_of(st.just(detail), json_values))}
    )
    return draw(st.one_of(st.just(envelope), st.just(envelope), json_values))


@PROPERTY
@given(event=app_events(), limits=st.one_of(st.just(INCOMING_LIMITS), limits))
def test_parse_attributes_detail_answers_a_valid_detail_or_invalid_input(
    event: Any, limits: AttributeLimits
) -> None:
    try:
        found = events.parse_attributes_detail(event, limits)
    except InvalidInput as refused:
        assert str(refused)
        return
    assert_canonical_uuid(found.conversation_id)
    assert_canonical_uuid(found.participant_id)
    assert found.media_type in KNOWN_MEDIA_TYPES
    assert_valid_attributes(found.attributes, limits)
    for text in (found.correlation_id, found.source_event_id):
        assert isinstance(text, str) and 0 < len(text) <= 256
    assert events.parse_attributes_detail({"detail": found.to_dict()}, limits) == found


# ---------------------------------------------------------------------------- external answers

mappings = st.sampled_from(
    [
        {},
        {"case_status": "status"},
        {"status": "attributes.case_status", "first": "items[0]", "deep": "a.b.c"},
        {"count": "length(items)", "total": "sum(items)", "joined": "join(',', items)"},
    ]
)


@st.composite
def external_answers(draw: st.DrawFn) -> Any:
    answer = draw(st.dictionaries(st.text(max_size=10), json_values, max_size=4))
    if draw(st.booleans()):
        answer["attributes"] = draw(attribute_maps)
    if draw(st.booleans()):
        answer["items"] = draw(json_values)
    if draw(st.booleans()):
        answer["status"] = draw(json_values)
    return draw(st.one_of(st.just(answer), st.just(answer), json_values))


@PROPERTY
@given(answer=external_answers(), mapping=mappings, limits=limits)
@example(answer={"items": 5}, mapping={"count": "length(items)"}, limits=AttributeLimits())
@example(answer={"attributes": {"n": 10**30}}, mapping={}, limits=AttributeLimits())
@example(answer={"attributes": {"b": False}}, mapping={}, limits=AttributeLimits(5, 5, 4))
def test_map_external_answer_keeps_strings_within_limits_and_names_the_rest(
    answer: Any, mapping: dict[str, str], limits: AttributeLimits
) -> None:
    try:
        found = domain.map_external_answer(answer, mapping, limits)
    except ExternalSystemError as refused:
        assert refused.retryable is False  # the same answer will not get better
        assert not isinstance(answer, dict) or (
            not mapping and not isinstance(answer.get("attributes", {}), dict)
        )
        return
    assert isinstance(answer, dict)
    kept, rejected = found.attributes, found.rejected
    assert_valid_attributes(
        kept,
        AttributeLimits(limits.max_keys, limits.max_key_length, limits.max_value_length, 10**9),
    )
    assert not set(kept) & set(rejected)
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in rejected.items())
    keys = mapping or answer.get("attributes", {})
    offered = {str(key) for key in keys} | {str(key)[:64] for key in keys}
    assert set(kept) | set(rejected) <= offered


def test_map_external_answer_turns_scalars_into_strings() -> None:
    found = domain.map_external_answer(
        {"attributes": {"n": 42, "f": 0.5, "t": True, "none": None, "o": {}, "l": [1]}},
        {},
        AttributeLimits(),
    )
    assert found.attributes == {"n": "42", "f": "0.5", "t": "true"}
    assert found.rejected == {"o": "dict value", "l": "list value"}


@pytest.mark.parametrize("answer", [[], "ok", 3, None, {"attributes": []}])
def test_map_external_answer_refuses_what_is_not_an_object(answer: Any) -> None:
    with pytest.raises(ExternalSystemError):
        domain.map_external_answer(answer, {}, AttributeLimits())
