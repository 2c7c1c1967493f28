"""The write rules (write_rules.decide_write): the one decision every path that writes into
a live conversation makes. Keys, values, purposes and the compare-and-set of a stale write."""

from __future__ import annotations

from typing import Any

import pytest
from attribute_bridge.config import Settings
from attribute_bridge.validation import AttributeLimits
from attribute_bridge.write_rules import (
    KEY_PATTERN,
    NOT_WRITABLE,
    STALE,
    NameList,
    WriteRules,
    check_keys,
    decide_write,
)
from hypothesis import given, settings
from hypothesis import strategies as st

RULES = WriteRules(NameList.parse(["case_status", "crm_*"]), frozenset({"customer"}))


def test_only_writable_keys_are_written_and_each_other_is_named_with_its_reason() -> None:
    decision = decide_write(
        {"customer_authenticated": "true", "fraud_flag": "cleared", "crm_tier": "gold"},
        RULES,
        purpose="customer",
    )

    assert decision.write == {"crm_tier": "gold"}
    assert decision.refused == {
        "customer_authenticated": NOT_WRITABLE,
        "fraud_flag": NOT_WRITABLE,
    }


@pytest.mark.parametrize(
    "key",
    ["crm_a\x00", "crm_a\nb", "crm_\u200bx", "crm a", "crm_é", "", "crm_" + "x" * 130],
)
def test_keys_outside_the_documented_pattern_are_refused(key: str) -> None:
    decision = decide_write({key: "v", "crm_ok": "v"}, RULES, purpose="customer")

    assert decision.write == {"crm_ok": "v"}
    assert list(decision.refused.values()) == ["invalid key"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\x00b", "NUL"),
        ("\ud800", "lone surrogate"),
        ("x" * 257, "257 characters"),
        (7, "int"),
        (None, "NoneType"),
    ],
)
def test_values_that_are_not_valid_text_are_refused(value: Any, problem: str) -> None:
    decision = decide_write({"crm_x": value}, RULES, purpose="customer")

    assert decision.write == {}
    assert problem in decision.refused["crm_x"]


@pytest.mark.parametrize("purpose", ["agent", "acd", "ivr", "external", ""])
def test_a_participant_whose_purpose_is_not_writable_gets_nothing(purpose: str) -> None:
    decision = decide_write({"crm_tier": "gold"}, RULES, purpose=purpose)

    assert decision.write == {}
    assert "purpose" in decision.refused["crm_tier"]


def test_compare_and_set_writes_only_the_keys_still_at_the_value_they_replace() -> None:
    decision = decide_write(
        {"crm_a": "new", "crm_b": "new", "crm_c": "new", "crm_d": "new"},
        RULES,
        purpose="customer",
        current={"crm_a": "old", "crm_b": "changed by someone else", "crm_d": "new"},
        based_on={"crm_a": "old", "crm_b": "old", "crm_c": None},
    )

    # crm_c was absent and still is; crm_d is already there; crm_b moved on: stale.
    assert decision.write == {"crm_a": "new", "crm_c": "new"}
    assert decision.refused == {"crm_b": STALE}


def test_compare_and_set_treats_a_key_with_no_known_base_as_stale() -> None:
    decision = decide_write(
        {"crm_a": "new"}, RULES, purpose="customer", current={"crm_a": "x"}, based_on={}
    )
    assert decision.stale == ["crm_a"]


def test_no_list_allows_every_key() -> None:
    with pytest.raises(ValueError, match="only `prefix\\*`"):
        NameList.parse(["*"])
    with pytest.raises(ValueError):
        NameList.parse(["crm*x"])
    assert "anything" not in NameList.parse([])


def test_the_settings_default_allows_no_key_and_only_customers() -> None:
    defaults = Settings.from_env({})

    assert check_keys({"crm_x": "1", "case_status": "open"}, defaults.write_rules).write == {}
    assert defaults.write_rules.purposes == frozenset({"customer"})


def test_readable_keys_default_to_the_sync_inputs_and_the_writable_keys() -> None:
    config = Settings.from_env(
        {"SYNC_ALLOWED_ATTRIBUTES": "case_id", "WRITABLE_ATTRIBUTES": "case_status,crm_*"}
    )
    attributes = {"case_id": "1", "case_status": "o", "crm_x": "2", "ssn_last4": "1234"}

    assert config.readable.select(attributes) == {"case_id": "1", "case_status": "o", "crm_x": "2"}
    narrowed = Settings.from_env({**config_env(), "READABLE_ATTRIBUTES": "case_id"})
    assert narrowed.readable.select(attributes) == {"case_id": "1"}


def config_env() -> dict[str, str]:
    return {"SYNC_ALLOWED_ATTRIBUTES": "case_id", "WRITABLE_ATTRIBUTES": "case_status,crm_*"}


def test_too_many_keys_are_refused_by_key_not_all_at_once() -> None:
    rules = WriteRules(NameList.parse(["crm_*"]), limits=AttributeLimits(max_keys=2))
    decision = check_keys({"crm_a": "1", "crm_b": "2", "crm_c": "3"}, rules)

    assert decision.write == {"crm_a": "1", "crm_b": "2"}
    assert decision.refused == {"crm_c": "more than 2 attributes"}


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.text(max_size=20), st.text(max_size=40) | st.integers(), max_size=10),
    st.sampled_from(["customer", "agent", "ivr"]),
)
def test_nothing_outside_the_rules_is_ever_written(
    attributes: dict[str, Any], purpose: str
) -> None:
    decision = decide_write(attributes, RULES, purpose=purpose)

    for key, value in decision.write.items():
        assert purpose == "customer"
        assert KEY_PATTERN.fullmatch(key) and key in RULES.writable
        assert isinstance(value, str) and "\x00" not in value and len(value) <= 256
    assert len(decision.write) + len(decision.refused) <= len(attributes)


@pytest.mark.parametrize(
    ("inputs", "writable"),
    [("case_id,crm_last_sync", "crm_*"), ("crm_*", "crm_x"), ("case_id", "case_id")],
)
def test_a_key_both_sent_and_written_is_a_configuration_error(inputs: str, writable: str) -> None:
    """Every write would change the inputs and start another sync: a loop, refused at once."""
    from attribute_bridge.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="every write would start another sync"):
        Settings.from_env({"SYNC_ALLOWED_ATTRIBUTES": inputs, "WRITABLE_ATTRIBUTES": writable})
