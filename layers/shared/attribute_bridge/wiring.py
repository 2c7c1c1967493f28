"""The adapters, built from Settings on first use and kept for the container's life.

Handlers ask for what they need here; a test swaps any of them with `override()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from attribute_bridge.config import Settings, settings
from attribute_bridge.conversation_state import ConversationState
from attribute_bridge.dead_letters import DeadLetterQueue
from attribute_bridge.external import ExternalSystem
from attribute_bridge.genesys.client import GenesysClient
from attribute_bridge.genesys.endpoints import resolve_endpoints
from attribute_bridge.http import shared_session
from attribute_bridge.token_store import ClientCredentialsMinter, TokenSettings, TokenStore

_overrides: dict[str, Any] = {}


@cache
def parameter_store() -> Any:
    from attribute_bridge.aws import ParameterStore

    return ParameterStore(kms_key_id=settings().token_kms_key_id)


@cache
def token_store() -> TokenStore:
    from attribute_bridge.aws import TokenLease

    config = settings()
    return TokenStore(
        TokenSettings(
            parameter_name=config.token_parameter,
            cache_seconds=config.token_cache_seconds,
            expiry_skew_seconds=config.token_expiry_skew_seconds,
            refresh_ahead_seconds=config.token_refresh_ahead_seconds,
        ),
        parameters=parameter_store(),
        lease=TokenLease(config.token_lease_table),
        minter=ClientCredentialsMinter(
            resolve_endpoints(config.genesys_region).login_url,
            parameter_store(),
            config.client_id_parameter,
            config.client_secret_parameter,
            shared_session(),
        ),
    )


def genesys() -> GenesysClient:
    return _overrides.get("genesys") or _genesys()


@cache
def _genesys() -> GenesysClient:
    return GenesysClient(resolve_endpoints(settings().genesys_region), token_store())


def publisher() -> Any:
    return _overrides.get("publisher") or _publisher()


@cache
def _publisher() -> Any:
    from attribute_bridge.aws import EventPublisher

    config = settings()
    return EventPublisher(config.app_event_bus, config.event_source)


def external_system() -> ExternalSystem:
    return _overrides.get("external_system") or _external_system()


@cache
def _external_system() -> ExternalSystem:
    config = settings()

    def auth_header() -> str | None:
        if not config.external_auth_parameter:
            return None
        return str(parameter_store().get_secure(config.external_auth_parameter, max_age=300))

    return ExternalSystem(
        config.external_url,
        auth_header,
        shared_session(),
        timeout_seconds=config.external_timeout_seconds,
        retries=config.external_retries,
    )


def conversation_state() -> ConversationState:
    return _overrides.get("conversation_state") or _conversation_state()


@cache
def _conversation_state() -> ConversationState:
    from attribute_bridge.conversation_state import DynamoConversationState

    table = settings().conversation_state_table
    if not table:
        raise RuntimeError("CONVERSATION_STATE_TABLE is not set")
    return DynamoConversationState(table)


def dead_letters() -> DeadLetterQueue:
    return _overrides.get("dead_letters") or DeadLetterQueue(settings().dead_letter_queue_url)


def current_settings() -> Settings:
    return _overrides.get("settings") or settings()


def reset() -> None:
    """Forget every adapter and the settings (tests change the environment between runs)."""
    for cached in (
        settings,
        parameter_store,
        token_store,
        _genesys,
        _publisher,
        _external_system,
        _conversation_state,
    ):
        cached.cache_clear()
    _overrides.clear()


@contextmanager
def override(**adapters: Any) -> Iterator[None]:
    previous = dict(_overrides)
    _overrides.update(adapters)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(previous)
