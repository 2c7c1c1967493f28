"""Conversations and participant attributes on Genesys Cloud, through the SDK's ApiClient.

The SDK's own API classes (ConversationsApi) import ~2,350 models, so calls go through
`ApiClient.call_api` with the same paths and response types they use; responses still
deserialize into the SDK's models. Retries are decided here, not by urllib3: see
`RetryPolicy` and `GenesysClient._call`.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger

from attribute_bridge import metric_names
from attribute_bridge.budget import Budget
from attribute_bridge.errors import (
    Conflict,
    Forbidden,
    GenesysError,
    GenesysUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from attribute_bridge.genesys.endpoints import GenesysEndpoints
from attribute_bridge.genesys.pacer import Bucket, RatePacer
from attribute_bridge.genesys.sdk import load_sdk
from attribute_bridge.http import shared_session
from attribute_bridge.validation import require_uuid

if TYPE_CHECKING:
    import requests  # imported when a session is built (attribute_bridge.http)

logger = Logger(child=True)

ENDED_STATES = frozenset({"disconnected", "terminated"})
# A pacing wait shorter than this is sent at once: not worth a sleep, a metric and a log
# line (which would read "wait 0.0").
MIN_PACING_WAIT_SECONDS = 0.001


@dataclass(frozen=True)
class Participant:
    id: str
    purpose: str
    state: str | None
    attributes: Mapping[str, str]

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES


@dataclass(frozen=True)
class Conversation:
    id: str
    media_type: str
    participants: tuple[Participant, ...]
    ended: bool


@dataclass(frozen=True)
class MediaRoute:
    """The media-aware endpoints, as the SDK's ConversationsApi names them."""

    conversation_path: str
    attributes_path: str
    response_type: str


MEDIA_ROUTES: dict[str, MediaRoute] = {
    # get_conversations_call / patch_conversations_call_participant_attributes
    "VOICE": MediaRoute(
        "/api/v2/conversations/calls/{conversationId}",
        "/api/v2/conversations/calls/{conversationId}/participants/{participantId}/attributes",
        "CallConversation",
    ),
    # get_conversations_message / patch_conversations_message_participant_attributes
    "MESSAGE": MediaRoute(
        "/api/v2/conversations/messages/{conversationId}",
        "/api/v2/conversations/messages/{conversationId}/participants/{participantId}/attributes",
        "MessageConversation",
    ),
}
# get_conversation / patch_conversation_participant_attributes: every other media.
GENERIC_ROUTE = MediaRoute(
    "/api/v2/conversations/{conversationId}",
    "/api/v2/conversations/{conversationId}/participants/{participantId}/attributes",
    "Conversation",
)


def media_route(media_type: str) -> MediaRoute:
    return MEDIA_ROUTES.get(media_type.upper(), GENERIC_ROUTE)


class TokenProvider(Protocol):
    def access_token(self, budget: Budget) -> str: ...

    def reject(self, token: str, budget: Budget) -> None:
        """Genesys answered 401 to `token`: stop using it, find or mint a new one."""


@dataclass(frozen=True)
class RetryPolicy:
    server_error_retries: int = 3  # 5xx, timeouts, connection errors
    conflict_retries: int = 3  # 409
    rate_limit_retries: int = 3  # 429 waits honoured while the budget allows them
    backoff_base: float = 0.2
    backoff_cap: float = 2.0
    connect_timeout: float = 3.05
    read_timeout: float = 5.0
    min_call_seconds: float = 0.25  # no request starts with less time than this left
    # Slow down before a 429, from the inin-ratelimit-* headers (RatePacer); False: only
    # after one (a benchmark's "before" row).
    pace: bool = True
    random: Callable[[], float] = field(default=random.random, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def server_backoff(self, retry: int) -> float:
        """Capped exponential backoff with full jitter."""
        return float(self.random() * min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))

    def conflict_backoff(self, retry: int) -> float:
        return self.backoff_base * retry * (0.5 + self.random())


class TransportError(Exception):
    """Timeout or connection failure below HTTP."""


class _SdkResponse:
    """The response shape ApiClient and ApiException read (like the SDK's RESTResponse)."""

    def __init__(self, response: requests.Response) -> None:
        self.status = response.status_code
        self.reason = response.reason
        self.data = response.content
        self._headers = response.headers

    def getheaders(self) -> Mapping[str, str]:
        return self._headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self._headers.get(name, default)


def _requests_http_client(session: requests.Session, pacer: RatePacer | None) -> Any:
    """An SDK AbstractHttpClient over a requests Session: keep-alive, a timeout on every
    request, and no retries (the SDK's urllib3 client retries 429/503 behind our back).
    Every answer's rate-limit headers go to `pacer`, for the bucket the caller set."""
    import requests  # the session's own: already loaded

    sdk = load_sdk()

    class RequestsHttpClient(sdk.AbstractHttpClient):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.request_timeout: tuple[float, float] = (3.05, 5.0)
            self.bucket: Bucket | None = None  # set by GenesysClient before each request

        def request(self, options: Any) -> _SdkResponse:
            body = None if options.body is None else json.dumps(options.body)
            bucket = self.bucket if pacer is not None else None
            answer_headers: Mapping[str, str] | None = None
            if pacer is not None and bucket is not None:
                pacer.sending(bucket)
            try:
                response = session.request(
                    options.method,
                    options.url,
                    params=options.query_params or None,
                    headers=options.headers,
                    data=body,
                    timeout=self.request_timeout,
                    allow_redirects=False,
                )
                answer_headers = response.headers
            except requests.RequestException as error:
                # Timeouts, lost connections, a broken chunked body: all below HTTP.
                raise TransportError(f"{type(error).__name__}: {error}") from error
            finally:
                # Always, or the request would count against the headroom forever.
                if pacer is not None and bucket is not None:
                    pacer.answered(bucket, answer_headers)
            record_rate_limit(response.status_code, response.headers)
            wrapped = _SdkResponse(response)
            if not 200 <= wrapped.status < 300:
                raise sdk.ApiException(http_resp=wrapped)
            return wrapped

    return RequestsHttpClient()


def record_rate_limit(status: int, headers: Mapping[str, str]) -> None:
    """Metrics of one Genesys answer: a request, a 429, and the rate-limit headroom the
    `inin-ratelimit-*` headers give (the limit varies per endpoint: read, not assumed)."""
    metric_names.emit(metric_names.GENESYS_REQUEST)
    if status == 429:
        metric_names.emit(metric_names.GENESYS_RATE_LIMITED)
    try:
        allowed = int(headers["inin-ratelimit-allowed"])
        used = int(headers["inin-ratelimit-count"])
    except (KeyError, ValueError):
        return
    metric_names.emit(metric_names.GENESYS_RATE_LIMIT_HEADROOM, max(0, allowed - used))


class GenesysClient:
    """Reads conversations and patches participant attributes, media-aware."""

    def __init__(
        self,
        endpoints: GenesysEndpoints,
        tokens: TokenProvider,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        pacer: RatePacer | None = None,
    ) -> None:
        """`pacer`: this container's memory of Genesys's rate-limit buckets (default: a new
        one, unless `retry.pace` is False)."""
        sdk = load_sdk()
        self._sdk = sdk
        self._tokens = tokens
        self._retry = retry or RetryPolicy()
        self._pacer = pacer or (RatePacer(sleep=self._retry.sleep) if self._retry.pace else None)
        self._http = _requests_http_client(session or shared_session(), self._pacer)
        self._api = sdk.ApiClient(host=endpoints.api_url)
        self._api.set_http_client(self._http)

    def get_conversation(self, conversation_id: str, media_type: str, budget: Budget) -> Any:
        """The SDK model (CallConversation, MessageConversation or Conversation)."""
        route = media_route(media_type)
        params = {"conversationId": require_uuid(conversation_id, "conversationId")}
        return self._call("GET", route.conversation_path, params, budget, None, route.response_type)

    def read_conversation(
        self, conversation_id: str, media_type: str, budget: Budget
    ) -> Conversation:
        """The conversation as plain values: participants with id, purpose, state, attributes."""
        return to_conversation(
            self.get_conversation(conversation_id, media_type, budget), media_type
        )

    def patch_attributes(
        self,
        conversation_id: str,
        participant_id: str,
        media_type: str,
        attributes: Mapping[str, str],
        budget: Budget,
    ) -> None:
        """PATCH (Genesys merges: keys not sent are kept). Validate before calling."""
        route = media_route(media_type)
        params = {
            "conversationId": require_uuid(conversation_id, "conversationId"),
            "participantId": require_uuid(participant_id, "participantId"),
        }
        body = self._sdk.models.ParticipantAttributes()  # SDK models take no arguments
        body.attributes = dict(attributes)
        # The media endpoints answer 202 "Accepted"; nothing useful to deserialize.
        self._call("PATCH", route.attributes_path, params, budget, body, None)

    def _call(
        self,
        method: str,
        path: str,
        path_params: dict[str, str],
        budget: Budget,
        body: Any,
        response_type: str | None,
    ) -> Any:
        policy = self._retry
        token_rejected = False
        server_errors = conflicts = rate_limits = 0
        what = f"{method} {path}"
        while True:
            token = self._tokens.access_token(budget)
            bucket = self._pace(Bucket.of(token, method, path), budget, what)
            self._http.request_timeout = self._timeouts(budget, what)
            self._http.bucket = bucket  # sent and answered (or not) in RequestsHttpClient
            try:
                return self._api.call_api(
                    path,
                    method,
                    path_params=path_params,
                    header_params={
                        "Authorization": f"Bearer {token}",
                        "Accept": "application/json",
                        "Content-Type": "application/json",
                    },
                    body=body,
                    response_type=response_type,
                    auth_settings=[],
                )
            except TransportError as error:
                server_errors += 1
                self._wait_or_raise(
                    policy.server_backoff(server_errors),
                    server_errors <= policy.server_error_retries,
                    budget,
                    GenesysUnavailable(f"{what}: {error}"),
                )
                continue
            except self._sdk.ApiException as error:
                status = int(error.status or 0)
                message = genesys_message(error.body) or str(error.reason)
                if status == 401 and not token_rejected:
                    # Revoked or expired while our copy looked fresh: reload once, retry once.
                    token_rejected = True
                    logger.warning("Genesys rejected the token; reloading it", extra={"call": what})
                    self._tokens.reject(token, budget)
                    continue
                if status == 403:
                    raise Forbidden(
                        f"{what}: 403 {message}: check the OAuth client's roles and their "
                        "divisions (a conversation outside them is refused)",
                        status,
                    ) from None
                if status == 401:
                    raise Unauthorized(f"{what}: {status} {message}", status) from None
                if status == 404:
                    raise NotFound(f"{what}: {message}", status) from None
                if status in (400, 413, 422):
                    raise InvalidRequest(f"{what}: {status} {message}", status) from None
                if status == 429:
                    rate_limits += 1
                    wait = retry_after_seconds(error.headers)
                    # Never sleep past the invocation: hand the wait to the event's retry.
                    if (
                        rate_limits <= policy.rate_limit_retries
                        and _believable_wait(error.headers)
                        and budget.allows(wait + policy.min_call_seconds)
                    ):
                        logger.info("Genesys rate limit: waiting", extra={"retry_after": wait})
                        policy.sleep(wait)
                        continue
                    raise RateLimited(f"{what}: rate limited for {wait:.0f} s", wait) from None
                if status == 409:
                    conflicts += 1
                    self._wait_or_raise(
                        policy.conflict_backoff(conflicts),
                        conflicts <= policy.conflict_retries,
                        budget,
                        Conflict(f"{what}: 409 {message}", status),
                    )
                    continue
                if status >= 500 or status == 0:
                    server_errors += 1
                    self._wait_or_raise(
                        policy.server_backoff(server_errors),
                        server_errors <= policy.server_error_retries,
                        budget,
                        GenesysUnavailable(f"{what}: {status} {message}", status),
                    )
                    continue
                raise GenesysError(f"{what}: unexpected {status} {message}", status) from None

    def _pace(self, bucket: Bucket, budget: Budget, what: str) -> Bucket | None:
        """Wait as the pacer says before a request to `bucket` (RatePacer's rule), within
        the budget; a wait that does not fit raises RateLimited without sending, as a 429
        that does not fit: Lambda retries the event later. The bucket, once it may go
        (None without a pacer)."""
        pacer = self._pacer
        if pacer is None:
            return None
        wait = pacer.delay(bucket)
        if wait >= MIN_PACING_WAIT_SECONDS:
            metric_names.emit(metric_names.GENESYS_PACED)
            if not budget.allows(wait + self._retry.min_call_seconds):
                logger.info(
                    "Genesys rate limit headroom: the wait outlasts the invocation",
                    extra={"call": what, "wait": round(wait, 3)},
                )
                raise RateLimited(f"{what}: paced for {wait:.0f} s, more than the time left", wait)
            logger.info(
                "Genesys rate limit headroom low: pacing",
                extra={"call": what, "wait": round(wait, 3)},
            )
            pacer.sleep(wait)
        return bucket

    def _wait_or_raise(
        self, wait: float, may_retry: bool, budget: Budget, error: GenesysError
    ) -> None:
        if may_retry and budget.allows(wait + self._retry.min_call_seconds):
            self._retry.sleep(wait)
            return
        raise error

    def _timeouts(self, budget: Budget, what: str) -> tuple[float, float]:
        remaining = budget.remaining()
        if remaining < self._retry.min_call_seconds:
            raise GenesysUnavailable(f"{what}: no time left in this invocation for the call")
        return (
            min(self._retry.connect_timeout, remaining),
            min(self._retry.read_timeout, remaining),
        )


# Genesys's rate limits are per minute: no honest Retry-After is longer than the window.
MAX_RETRY_AFTER_SECONDS = 60.0


def retry_after_seconds(headers: Mapping[str, str] | None, default: float = 1.0) -> float:
    """Retry-After as seconds, within [0, 60]: Genesys sends an integer; an HTTP date
    (RFC 9110) is accepted too; an absurd value (a day, `inf`) is capped to the rate
    window, and an unreadable one (`nan`, text) is `default`."""
    seconds = _retry_after(headers)
    return default if seconds is None else min(MAX_RETRY_AFTER_SECONDS, seconds)


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime  # an HTTP-date: rare

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError):
            return None
    return None if math.isnan(seconds) else max(0.0, seconds)


def _believable_wait(headers: Mapping[str, str] | None) -> bool:
    """A Retry-After beyond the rate window is not slept on inside an invocation (it is
    wrong, or a long block): the event goes back to Lambda's spaced retries instead."""
    seconds = _retry_after(headers)
    return seconds is None or seconds <= MAX_RETRY_AFTER_SECONDS


def genesys_message(body: Any) -> str:
    """The `message` of a Genesys error body, or the start of the raw body."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return str(body)[:200]
    if isinstance(parsed, dict):
        return str(parsed.get("message") or parsed.get("error_description") or parsed)[:500]
    return str(parsed)[:200]


_COMMUNICATION_LISTS = (
    "calls",
    "callbacks",
    "chats",
    "cobrowsesessions",
    "emails",
    "messages",
    "screenshares",
    "social_expressions",
    "videos",
)


def to_conversation(model: Any, media_type: str) -> Conversation:
    """SDK model -> plain values. Media participants carry `state`; a generic Conversation's
    participants carry it on their communications (calls, messages, ...)."""
    participants = tuple(
        Participant(
            id=str(p.id),
            purpose=str(p.purpose or ""),
            state=_participant_state(p),
            attributes=dict(p.attributes or {}),
        )
        for p in (model.participants or [])
    )
    generic_state = getattr(model, "state", None)
    ended = (
        getattr(model, "end_time", None) is not None
        or generic_state in ENDED_STATES
        or (bool(participants) and all(p.ended for p in participants))
    )
    return Conversation(
        id=str(model.id), media_type=media_type.upper(), participants=participants, ended=ended
    )


def _participant_state(participant: Any) -> str | None:
    state = getattr(participant, "state", None)
    if state:
        return str(state)
    for name in _COMMUNICATION_LISTS:
        communications = getattr(participant, name, None) or []
        if communications:
            return str(communications[-1].state) if communications[-1].state else None
    if getattr(participant, "end_time", None) is not None:
        return "terminated"
    return None
