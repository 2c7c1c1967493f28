"""Settings of the Genesys Cloud emulator (defaults follow GENESYS.md's org limits)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

EndedConversationWrites = Literal["accept", "not_found"]


@dataclass(frozen=True)
class EmulatorConfig:
    client_id: str = "local-client-id"
    # Well-known local credentials, not a secret: the emulator binds 127.0.0.1 only.
    client_secret: str = "local-client-secret"  # noqa: S105
    # More OAuth clients, (client_id, client_secret) pairs, each minting its own tokens (the
    # pipeline's GenesysExtraClientCount); rate windows are per token anyway.
    extra_clients: tuple[tuple[str, str], ...] = ()
    # Genesys client-credentials tokens live 24 h by default; tests use fractions of a second.
    token_ttl_seconds: float = 86400
    # `token.rate.per.minute`: API requests allowed per token per window.
    rate_limit: int = 300
    rate_window_seconds: float = 60.0
    # Route key (a `counters()["requests"]` key, e.g. "PATCH /api/v2/conversations/calls/
    # {id}/participants/{pid}/attributes") -> requests allowed per token per window on that
    # endpoint alone (GENESYS.md: the limit applied varies per endpoint, 180 seen). Such an
    # endpoint has its own window per token and does not count against `rate_limit`.
    endpoint_rate_limits: dict[str, int] = field(default_factory=dict)
    # `request.bytes.max`.
    max_request_bytes: int = 512000
    # GENESYS.md: UNKNOWN whether an ended conversation accepts attribute writes (202) or
    # answers 404. "accept" is the default; "not_found" lets callers test the other answer.
    ended_conversation_writes: EndedConversationWrites = "accept"
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        # Types first: a setting of the wrong type (e.g. "300" from a JSON body) would be
        # accepted here and break a later request instead.
        for name in ("client_id", "client_secret", "host"):
            require_text(getattr(self, name), name, empty=name == "client_secret")
        object.__setattr__(self, "extra_clients", _client_pairs(self.extra_clients))
        ids = [self.client_id, *(client_id for client_id, _ in self.extra_clients)]
        if len(set(ids)) != len(ids):
            raise ValueError("extra_clients: every client id must differ from the others")
        require_number(self.token_ttl_seconds, "token_ttl_seconds", above=0)
        require_number(self.rate_window_seconds, "rate_window_seconds", above=0)
        require_whole(self.rate_limit, "rate_limit", minimum=1)
        # a copy: the caller's dict changing later must not change a frozen config
        object.__setattr__(
            self, "endpoint_rate_limits", require_endpoint_limits(self.endpoint_rate_limits)
        )
        require_whole(self.max_request_bytes, "max_request_bytes", minimum=1)
        require_whole(self.port, "port", minimum=0, maximum=65535)
        if self.ended_conversation_writes not in ("accept", "not_found"):
            raise ValueError("ended_conversation_writes must be 'accept' or 'not_found'")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def require_endpoint_limits(value: Any) -> dict[str, int]:
    """A copy of a route key -> whole number >= 1 map, every key a rate-limited route."""
    # Imported here: server.py, which holds the routes, imports this module.
    from localdev.emulator.server import RATE_LIMITED_ROUTE_KEYS

    if not isinstance(value, dict):
        raise ValueError(f"endpoint_rate_limits must be an object, got {_kind(value)}")
    for key, limit in value.items():
        if key not in RATE_LIMITED_ROUTE_KEYS:
            raise ValueError(
                f"endpoint_rate_limits: unknown route key {key!r:.120}; "
                f"known: {sorted(RATE_LIMITED_ROUTE_KEYS)}"
            )
        require_whole(limit, f"endpoint_rate_limits[{key!r}]", minimum=1)
    return dict(value)


def _client_pairs(value: Any) -> tuple[tuple[str, str], ...]:
    """[[id, secret], ...] (JSON has no tuples) -> ((id, secret), ...), each non-empty."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"extra_clients must be a list of [id, secret] pairs, got {_kind(value)}")
    pairs = []
    for pair in value:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise ValueError("extra_clients must be a list of [id, secret] pairs")
        pairs.append(
            (require_text(pair[0], "extra client id"), require_text(pair[1], "extra client secret"))
        )
    return tuple(pairs)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def require_text(value: Any, name: str, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ValueError(
            f"{name} must be a{'' if empty else ' non-empty'} string, got {_kind(value)}"
        )
    return value


def require_whole(
    value: Any, name: str, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An int (not a bool, not "1", not 1.5) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {_kind(value)} {value!r:.40}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def require_number(
    value: Any,
    name: str,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
) -> float:
    """An int or a float (not a bool, not "1"), >= minimum or > above, <= maximum."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"{name} must be a number, got {_kind(value)} {value!r:.40}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value}")
    if above is not None and value <= above:
        raise ValueError(f"{name} must be > {above:g}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value}")
    return float(value)
