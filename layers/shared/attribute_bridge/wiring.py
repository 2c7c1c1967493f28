"""The adapters, built from Settings on first use and kept for the container's life.

Handlers ask for what they need here; a test swaps any of them with `override()`, and a
local run puts its stand-ins for the platform (the sandbox's in-process TokenRefresher) in
place with `run_locally()`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from attribute_bridge.config import Settings, settings
from attribute_bridge.conversation_state import ConversationState
from attribute_bridge.dead_letters import DeadLetterQueue
from attribute_bridge.errors import ConfigurationError
from attribute_bridge.external import ExternalSystem
from attribute_bridge.genesys.client import GenesysClient
from attribute_bridge.genesys.endpoints import resolve_endpoints
from attribute_bridge.http import shared_session
from attribute_bridge.oauth_clients import (
    API,
    PIPELINE,
    ClientParameters,
    client_parameters,
    parse_extra_clients,
    pinned_client,
)
from attribute_bridge.token_store import (
    ClientCredentialsMinter,
    TokenRefresher,
    TokenSettings,
    TokenStore,
)

_overrides: dict[str, Any] = {}
_local_platform: dict[str, Any] = {}  # kept by reset(): it stands for AWS itself
_container: dict[tuple[str, tuple[Any, ...]], Any] = {}  # what one container has built


def _per_container[T](build: Callable[..., T]) -> Callable[..., T]:
    """Like functools.cache, but kept in `_container`, so that another_container() can set
    this container's adapters aside while another function runs in the same process."""

    @functools.wraps(build)
    def get(*args: Any) -> T:
        key = (build.__name__, args)
        if key not in _container:
            _container[key] = build(*args)
        return _container[key]  # type: ignore[no-any-return]

    return get


@_per_container
def parameter_store() -> Any:
    from attribute_bridge.aws import ParameterStore

    return ParameterStore(kms_key_id=settings().token_kms_key_id)


def _token_settings(parameter_name: str) -> TokenSettings:
    config = settings()
    return TokenSettings(
        parameter_name=parameter_name,
        cache_seconds=config.token_cache_seconds,
        expiry_skew_seconds=config.token_expiry_skew_seconds,
        refresh_ahead_seconds=config.token_refresh_ahead_seconds,
    )


@_per_container
def token_store(client: str = "") -> TokenStore:
    """The token of `client` ("": this function's own, GENESYS_TOKEN_CLIENT, "pipeline" by
    default; or one of the extra clients). In the deployed stack a function never holds
    the client secret: it asks TokenRefresher (TOKEN_REFRESHER_FUNCTION) for a token.
    Without one (TokenRefresher itself, scripts), the store mints."""
    own = os.environ.get("GENESYS_TOKEN_CLIENT", PIPELINE)
    client = client or own
    refresher_name = os.environ.get("TOKEN_REFRESHER_FUNCTION", "")
    if not refresher_name:
        return minting_store(PIPELINE if client == own else client)
    token_parameter = settings().token_parameter if client == own else _extra_client(client).token
    return TokenStore(
        _token_settings(token_parameter),
        parameters=parameter_store(),
        refresher=token_refresher(refresher_name),
        client=client,
    )


def pipeline_clients() -> tuple[str, ...]:
    """The OAuth clients the pipeline spreads its Genesys calls over: "pipeline" and the
    extra ones (GENESYS_EXTRA_CLIENTS, from GenesysExtraClientCount; none by default)."""
    return (PIPELINE, *parse_extra_clients(os.environ.get("GENESYS_EXTRA_CLIENTS", "")))


def genesys_client_name(conversation_id: str | None = None) -> str:
    """The OAuth client a call about `conversation_id` uses here: pinned among the
    pipeline's clients when there are several, else this function's own."""
    clients = pipeline_clients()
    if conversation_id and len(clients) > 1:
        return pinned_client(conversation_id, clients)
    return os.environ.get("GENESYS_TOKEN_CLIENT", PIPELINE)


def _extra_client(name: str) -> ClientParameters:
    if name not in pipeline_clients():
        raise ConfigurationError(f"no Genesys OAuth client {name!r} is configured")
    prefix = os.environ.get("GENESYS_EXTRA_CLIENTS_PREFIX", "")
    if not prefix:
        raise ConfigurationError("GENESYS_EXTRA_CLIENTS is set but not its prefix")
    return client_parameters(prefix, name)


def token_refresher(function_name: str) -> TokenRefresher:
    found = _overrides.get("token_refresher") or _local_platform.get("token_refresher")
    if found is not None:
        return found  # type: ignore[no-any-return]
    from attribute_bridge.aws import LambdaTokenRefresher

    return LambdaTokenRefresher(function_name)


def minting_clients() -> tuple[str, ...]:
    """The Genesys OAuth clients TokenRefresher mints for: the pipeline's (and its extra
    ones), and the API's own if it has one (API_GENESYS_* parameters)."""
    has_api_client = os.environ.get("API_GENESYS_CLIENT_ID_PARAMETER") and os.environ.get(
        "API_GENESYS_TOKEN_PARAMETER"
    )
    return (*pipeline_clients(), API) if has_api_client else pipeline_clients()


@_per_container
def minting_store(client: str) -> TokenStore:
    """A store that mints with a client's id and secret: TokenRefresher's (one invocation at
    a time, so no lease), or a lease holder's where TOKEN_LEASE_TABLE is set."""
    from attribute_bridge.aws import TokenLease

    config = settings()
    if client == API:
        names = tuple(
            os.environ.get(f"API_GENESYS_{name}_PARAMETER", "")
            for name in ("TOKEN", "CLIENT_ID", "CLIENT_SECRET")
        )
    elif client == PIPELINE:
        names = (config.token_parameter, config.client_id_parameter, config.client_secret_parameter)
    else:
        extra = _extra_client(client)
        names = (extra.token, extra.client_id, extra.client_secret)
    token_parameter, client_id_parameter, client_secret_parameter = names
    if not all(names):
        raise ValueError(f"no Genesys OAuth client {client!r} is configured")
    lease_table = os.environ.get("TOKEN_LEASE_TABLE", "")
    # One lease per client: minting one client's token must not hold up another's.
    lease_key = "genesys-token-mint" + ("" if client == PIPELINE else f"-{client}")
    return TokenStore(
        _token_settings(token_parameter),
        parameters=parameter_store(),
        lease=TokenLease(lease_table, lease_key) if lease_table else None,
        minter=ClientCredentialsMinter(
            resolve_endpoints(config.genesys_region).login_url,
            parameter_store(),
            client_id_parameter,
            client_secret_parameter,
            shared_session(),
        ),
    )


def genesys(conversation_id: str | None = None) -> GenesysClient:
    """The Genesys adapter for calls about `conversation_id`: one per OAuth client, each
    with its own token (and rate window); see genesys_client_name."""
    return _overrides.get("genesys") or _genesys(genesys_client_name(conversation_id))


@_per_container
def _genesys(client: str) -> GenesysClient:
    return GenesysClient(resolve_endpoints(settings().genesys_region), token_store(client))


def publisher() -> Any:
    return _overrides.get("publisher") or _publisher()


@_per_container
def _publisher() -> Any:
    from attribute_bridge.aws import EventPublisher

    config = settings()
    return EventPublisher(config.app_event_bus, config.event_source)


def external_system() -> ExternalSystem:
    return _overrides.get("external_system") or _external_system()


@_per_container
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


@_per_container
def _conversation_state() -> ConversationState:
    from attribute_bridge.conversation_state import DynamoConversationState

    table = settings().conversation_state_table
    if not table:
        raise ConfigurationError("CONVERSATION_STATE_TABLE is not set")
    return DynamoConversationState(table)


def dead_letters() -> DeadLetterQueue:
    found: DeadLetterQueue | None = _overrides.get("dead_letters")
    if found is not None:
        return found
    # Read directly: a configuration error must still reach the queue that reports it.
    return DeadLetterQueue(os.environ.get("DEAD_LETTER_QUEUE_URL", ""))


def current_settings() -> Settings:
    return _overrides.get("settings") or settings()


def reset() -> None:
    """Forget every adapter and the settings (tests change the environment between runs)."""
    settings.cache_clear()
    _container.clear()
    _overrides.clear()


@contextmanager
def another_container() -> Iterator[None]:
    """Run another function in this process (a local synchronous invoke): it builds its own
    adapters from its own environment; this container's are back untouched afterwards."""
    saved, saved_overrides = dict(_container), dict(_overrides)
    reset()
    try:
        yield
    finally:
        reset()
        _container.update(saved)
        _overrides.update(saved_overrides)


@contextmanager
def override(**adapters: Any) -> Iterator[None]:
    previous = dict(_overrides)
    _overrides.update(adapters)
    try:
        yield
    finally:
        _overrides.clear()
        _overrides.update(previous)


@contextmanager
def run_locally(**platform: Any) -> Iterator[None]:
    """Stand-ins for the platform (token_refresher=...) for a whole local run; unlike
    override(), reset() between invocations keeps them."""
    previous = dict(_local_platform)
    _local_platform.update(platform)
    try:
        yield
    finally:
        _local_platform.clear()
        _local_platform.update(previous)
