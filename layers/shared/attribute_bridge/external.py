"""The external system (a CRM, a case system...): one POST per sync, retried on 5xx and
timeouts within the invocation's budget. Its URL comes from configuration only.

Each POST carries an `Idempotency-Key` derived from the event that caused it: the same
key on every retry of that event (ours within the invocation, Lambda's, a replay), so the
external system can recognise a POST it has already handled."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from attribute_bridge import metric_names
from attribute_bridge.budget import Budget
from attribute_bridge.errors import ConfigurationError, ExternalSystemError
from attribute_bridge.http import require_https

if TYPE_CHECKING:
    import requests  # imported when a session is built (attribute_bridge.http)

logger = Logger(child=True)


class ExternalSystem:
    def __init__(
        self,
        url: str,
        auth_header: Callable[[], str | None],
        session: requests.Session,
        timeout_seconds: float = 3.0,
        retries: int = 2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        try:
            self._url = require_https(url, "EXTERNAL_SYSTEM_URL") if url else ""
        except ValueError as error:
            # Not a transient: Lambda retrying a plain-http URL cannot make it https.
            raise ConfigurationError(str(error)) from None
        self._auth_header = auth_header
        self._session = session
        self._timeout = timeout_seconds
        self._retries = retries
        self._sleep = sleep

    def sync(
        self, payload: Mapping[str, Any], budget: Budget, idempotency_key: str | None = None
    ) -> Any:
        """POST the payload; the parsed JSON answer."""
        import requests  # the session's own: already loaded

        if not self._url:
            raise ConfigurationError("EXTERNAL_SYSTEM_URL is not configured")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        auth = self._auth_header()
        if auth:
            headers["Authorization"] = auth
        attempt = 0
        while True:
            attempt += 1
            timeout = min(self._timeout, budget.remaining())
            if timeout <= 0.05:
                raise ExternalSystemError("no time left in this invocation for the external call")
            started = time.monotonic()
            try:
                response = self._session.post(
                    self._url,
                    json=dict(payload),
                    headers=headers,
                    timeout=(min(3.05, timeout), timeout),
                    allow_redirects=False,  # nothing may send the call elsewhere
                )
                problem = None if response.status_code < 500 else f"answered {response.status_code}"
            except (requests.Timeout, requests.ConnectionError) as error:
                response, problem = None, f"{type(error).__name__}"
            _record_attempt(started, None if response is None else response.status_code)
            if problem is None and response is not None:
                return self._answer(response)
            backoff = random.random() * min(2.0, 0.2 * 2 ** (attempt - 1))  # noqa: S311 (jitter)  # nosec B311
            if attempt > self._retries or not budget.allows(backoff + 0.1):
                raise ExternalSystemError(f"external system {problem} after {attempt} attempt(s)")
            logger.warning("External system call failed; retrying", extra={"problem": problem})
            self._sleep(backoff)

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        if response.status_code in (401, 403):
            raise ExternalSystemError(
                f"external system refused our credentials ({response.status_code})",
                response.status_code,
                retryable=False,
            )
        if not 200 <= response.status_code < 300:
            raise ExternalSystemError(
                f"external system answered {response.status_code}",
                response.status_code,
                retryable=False,
            )
        try:
            return response.json()
        except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
            raise ExternalSystemError(
                "external system answered invalid JSON", response.status_code, retryable=False
            ) from None


def _record_attempt(started: float, status: int | None) -> None:
    """Metrics of one attempt: its latency, and a failure unless it answered 2xx."""
    metric_names.emit(metric_names.EXTERNAL_CALL)
    elapsed_ms = (time.monotonic() - started) * 1000
    metric_names.emit(metric_names.EXTERNAL_LATENCY, elapsed_ms, "Milliseconds")
    if status is None or not 200 <= status < 300:
        metric_names.emit(metric_names.EXTERNAL_FAILURE)
