"""FetchMode: when FetchAttributes may skip the read (README "Context-only mode")."""

from __future__ import annotations

import pytest
from attribute_bridge.config import Settings
from attribute_bridge.errors import ConfigurationError


@pytest.mark.parametrize(
    ("env", "context_only"),
    [
        ({}, False),  # the defaults: nothing is sent, nothing to skip the read for
        ({"SYNC_CONTEXT_FIELDS": "ani"}, True),  # auto: no inputs, a context field
        ({"SYNC_CONTEXT_FIELDS": "ani", "SYNC_ALLOWED_ATTRIBUTES": "case_id"}, False),
        ({"SYNC_CONTEXT_FIELDS": "ani", "FETCH_MODE": "read"}, False),
        ({"FETCH_MODE": "context-only"}, True),  # asked for: the external system gets ids
        ({"FETCH_MODE": " Context-Only "}, True),
        ({"FETCH_MODE": ""}, False),  # empty: auto
    ],
)
def test_the_mode_is_read_unless_asked_or_the_read_could_send_nothing(
    env: dict[str, str], context_only: bool
) -> None:
    assert Settings.from_env(env).context_only is context_only


def test_context_only_with_input_attributes_is_a_configuration_error() -> None:
    env = {"FETCH_MODE": "context-only", "SYNC_ALLOWED_ATTRIBUTES": "case_id,account_id"}
    with pytest.raises(ConfigurationError, match="SyncAllowedAttributes names case_id"):
        Settings.from_env(env)


def test_an_unknown_mode_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="FetchMode 'never'"):
        Settings.from_env({"FETCH_MODE": "never"})
