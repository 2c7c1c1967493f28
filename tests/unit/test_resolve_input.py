"""The data action's input, as attribute_bridge.resolve reads it, and its time budget."""

from __future__ import annotations

from typing import Any

import pytest
from attribute_bridge.config import Settings
from attribute_bridge.errors import InvalidInput
from attribute_bridge.resolve import OUTPUT_KEYS, Resolution, budget_for, parse_input

CID = "6B1F2A9E-3C4D-4E5F-8A7B-9C0D1E2F3A4B"
SETTINGS = Settings(allowed_attributes=("case_id", "ani"))


def test_a_full_input_is_read_and_normalised() -> None:
    request = parse_input(
        {
            "conversationId": CID,
            "participantId": "",  # Architect's NOT_SET: absent
            "mediaType": "voice",
            "write": True,
            "ani": "tel:+1317",
            "queueId": None,
            "case_id": "C-1",
            "unlisted": "never sent",
        },
        SETTINGS,
    )

    assert request.conversation_id == CID.lower()
    assert request.participant_id is None and request.media_type == "VOICE"
    assert request.write is True
    assert request.context == {"ani": "tel:+1317"}
    # `ani` is a context field, never an attribute, even when allow-listed
    assert request.attributes == {"case_id": "C-1"}
    assert request.ignored == ("unlisted",)


@pytest.mark.parametrize(
    "bad",
    [
        {"conversationId": CID, "write": "true"},
        {"conversationId": CID, "ani": 13175550123},
        {"conversationId": CID, "case_id": ["C-1"]},
        {"conversationId": CID, "case_id": "x" * 257},
        {"conversationId": f"{CID}/../x"},
        {},
    ],
)
def test_wrong_types_and_ids_are_invalid_input_naming_the_field(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_input(bad, SETTINGS)
    assert any(name in str(refused.value) for name in ("write", "ani", "case_id", "conversationId"))


def test_the_input_must_be_an_object() -> None:
    with pytest.raises(InvalidInput):
        parse_input(["conversationId"], SETTINGS)


class Context:
    def __init__(self, millis: int) -> None:
        self.millis = millis

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


def test_the_budget_is_the_setting_or_what_the_invocation_has_left() -> None:
    settings = Settings(resolve_budget_seconds=4.0)
    assert 3.6 < budget_for(settings, Context(15_000)).remaining() <= 3.7  # 4 s - 0.3 reserve
    assert budget_for(settings, Context(2_000)).remaining() <= 1.2  # 2 s - margin - reserve
    assert budget_for(settings, Context(100)).remaining() == 0.0


def test_every_answer_has_every_output_key_and_no_null() -> None:
    answer = Resolution(status="failed", conversation_id="", participant_id="", correlation_id="c")
    assert tuple(answer.answer()) == OUTPUT_KEYS
    assert None not in answer.answer().values()
    assert answer.answer()["attributesJson"] == "{}"
