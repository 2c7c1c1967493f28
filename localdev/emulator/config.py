"""Settings of the Genesys Cloud emulator (defaults follow GENESYS.md's org limits)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

EndedConversationWrites = Literal["accept", "not_found"]


@dataclass(frozen=True)
class EmulatorConfig:
    client_id: str = "local-client-id"
    # Well-known local credentials, not a secret: the emulator binds 127.0.0.1 only.
    client_secret: str = "local-client-secret"  # noqa: S105
    # Genesys client-credentials tokens live 24 h by default; tests use fractions of a second.
    token_ttl_seconds: float = 86400
    # `token.rate.per.minute`: API requests allowed per token per window.
    rate_limit: int = 300
    rate_window_seconds: float = 60.0
    # `request.bytes.max`.
    max_request_bytes: int = 512000
    # GENESYS.md: UNKNOWN whether an ended conversation accepts attribute writes (202) or
    # answers 404. "accept" is the default; "not_found" lets callers test the other answer.
    ended_conversation_writes: EndedConversationWrites = "accept"
    host: str = "127.0.0.1"
    port: int = 0

    def __post_init__(self) -> None:
        if self.ended_conversation_writes not in ("accept", "not_found"):
            raise ValueError("ended_conversation_writes must be 'accept' or 'not_found'")
        if self.token_ttl_seconds <= 0:
            raise ValueError("token_ttl_seconds must be > 0")
        if self.rate_limit < 1 or self.rate_window_seconds <= 0:
            raise ValueError("rate_limit must be >= 1 and rate_window_seconds > 0")
        if self.max_request_bytes < 1:
            raise ValueError("max_request_bytes must be >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
