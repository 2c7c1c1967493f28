"""Typed errors. Handlers map them to outcomes: retry later, dead-letter, drop, or a 4xx."""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error this project raises on purpose."""

    retryable = False


class ConfigurationError(BridgeError):
    """This deployment is set up wrong (a URL, a role, a division): retrying cannot help
    until a person fixes it, so it is dead-lettered at once, with what to check."""


class InvalidInput(BridgeError):
    """An event or request body that can never succeed as it is."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or [message]


class InvalidAttributes(InvalidInput):
    """Attributes that Genesys would refuse, or that break the configured limits."""


class GenesysError(BridgeError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(GenesysError):
    """The conversation or participant does not exist (or is gone)."""


class InvalidRequest(GenesysError):
    """Genesys answered 400 (or 413): the request itself is wrong; its message is kept."""


class Unauthorized(GenesysError):
    """401 or 403 even with a freshly loaded token: credentials or permissions are wrong."""


class Forbidden(Unauthorized, ConfigurationError):
    """403: the token is good but the OAuth client's roles or divisions do not allow the
    call (GENESYS.md: a 403 is a configuration error, never "the conversation is gone")."""


class RateLimited(GenesysError):
    """429 whose Retry-After does not fit in the time left: retry the event later."""

    retryable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, 429)
        self.retry_after = retry_after


class Conflict(GenesysError):
    """409 that persisted through the conflict retries."""

    retryable = True


class GenesysUnavailable(GenesysError):
    """5xx, timeouts or connection errors that persisted through the retries."""

    retryable = True


class TokenUnavailable(BridgeError):
    """No usable Genesys token could be read or minted in time."""

    retryable = True


class ExternalSystemError(BridgeError):
    """The external system failed, timed out, or answered something unusable."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class PublishFailed(BridgeError):
    """EventBridge kept refusing some entries of a PutEvents call."""

    retryable = True
