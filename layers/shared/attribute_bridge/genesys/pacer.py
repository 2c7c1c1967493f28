"""Slow down before Genesys answers 429, from the `inin-ratelimit-*` headers it sends.

Genesys's limit varies per endpoint (180 has been seen where the documented figure is 300)
and every answer says, for the bucket that answered: `inin-ratelimit-allowed` (the limit),
`-count` (requests counted in the window, by everyone using the token) and `-reset`
(seconds until the window resets). Nothing here assumes a limit: it is read, per bucket.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# Genesys's rate limits are per minute: a reset further away than this is not believed
# (a wrong header must not stop a warm container for a day); the 429 path caps the same way.
MAX_RESET_SECONDS = 60.0
MAX_BUCKETS = 256  # old tokens' buckets are dropped beyond this


@dataclass(frozen=True)
class Bucket:
    """What Genesys limits: one endpoint (method + route template) for one token. A digest
    of the token is kept, not the token."""

    token: str
    method: str
    path: str

    @classmethod
    def of(cls, token: str, method: str, path: str) -> Bucket:
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]
        return cls(digest, method.upper(), path)


@dataclass
class _Window:
    allowed: int
    count: int  # the bucket's count in the latest answer
    reset_at: float  # when the window resets: the earliest the answers allow
    first_count: int  # the count in this container's first answer of the window
    answered: int = 0  # this container's answers in the window since that first one


@dataclass
class _State:
    window: _Window | None = None
    pending: int = 0  # sent by this container, not answered yet
    last_sent: float = -math.inf
    share: float = 1.0  # requests the bucket counts per request of this container


@dataclass
class RatePacer:
    """Per bucket, the last `allowed`, `count` and reset this container was told, and the
    wait before its next request there (`delay`). The rule, for a window not yet reset:

    - `share` = how many requests the bucket counted per request of this container, over
      this window (the count's growth between this container's answers, divided by its
      own requests; 1 until measured, carried over from the previous window). With N
      containers on one token it comes out near N, without any of them knowing N.
    - headroom = allowed - count - this container's requests not yet answered
      - (share - 1) / 2: the others' requests in flight when that count was taken (about
      one each), of which about half had been counted already.
    - headroom > `low_water` (1) x share: no wait. Plenty is left; slowing down would only
      lose throughput (a fixed window is best used as early as it comes).
    - 0 < headroom <= that: spread what is left over what is left of the window. This
      container's fair part of the headroom is headroom / share requests, so its requests
      are spaced (time left) x share / headroom apart, counted from its last one. When
      every container does this, the fleet sends at headroom / time left: it meets the
      limit as the window resets rather than in a rush of in-flight requests past it.
    - headroom <= 0: wait until the window resets.

    A container that sends less often than its spacing never waits. What still overshoots
    (the estimate of the others is rough) is answered 429 and waited out as before
    (GenesysClient). The cost: up to about share / 2 requests of each window unused, and
    when each container's part of the rest is under one request, the rest (a fleet of 10
    on a fixed window of 180 used ~175 in tests/unit/test_pacer.py's simulation, with no
    429, where sending regardless met 10 a window); and a burst whose last window ends in
    the spread-out part finishes later than one that rushes it. Thread-safe; a Lambda
    container sends one request at a time anyway.
    """

    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    low_water: float = 1.0  # requests per sender below which the rest is spread out
    _states: dict[Bucket, _State] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def delay(self, bucket: Bucket) -> float:
        """Seconds to wait before the next request to `bucket` (0: send now)."""
        with self._lock:
            state = self._states.get(bucket)
            window = state.window if state else None
            if state is None or window is None:
                return 0.0
            now = self.clock()
            left = window.reset_at - now
            if left <= 0:
                return 0.0
            # the others' requests in flight when our latest answer was counted: about
            # half of them had been counted already (each is somewhere in its round trip)
            unseen = (state.share - 1) / 2
            headroom = window.allowed - window.count - state.pending - unseen
            if headroom <= 0:
                return left
            if headroom > self.low_water * state.share:
                return 0.0
            spacing = left * state.share / headroom
            return min(left, max(0.0, state.last_sent + spacing - now))

    def sending(self, bucket: Bucket) -> None:
        """A request to `bucket` goes now."""
        with self._lock:
            state = self._states.setdefault(bucket, _State())
            state.pending += 1
            state.last_sent = self.clock()

    def answered(self, bucket: Bucket, headers: Mapping[str, str] | None) -> None:
        """The request's answer (any status; None: no answer, a timeout or a lost
        connection): learn the bucket's state from its headers."""
        with self._lock:
            state = self._states.setdefault(bucket, _State())
            state.pending = max(0, state.pending - 1)
            seen = _rate_headers(headers)
            if seen is None:
                return
            allowed, count, reset = seen
            now = self.clock()
            reset_at = now + min(reset, MAX_RESET_SECONDS)
            window = state.window
            if (
                window is None
                or now >= window.reset_at
                or allowed != window.allowed
                or count < window.count  # the count fell: a new window began
            ):
                state.window = _Window(allowed, count, reset_at, first_count=count)
                self._forget_old(now)
                return
            window.count = count
            # `reset` is whole seconds rounded up: each answer bounds the reset from above
            window.reset_at = min(window.reset_at, reset_at)
            window.answered += 1
            grown = window.count - window.first_count
            state.share = min(float(allowed), max(1.0, grown / window.answered))

    def _forget_old(self, now: float) -> None:
        if len(self._states) <= MAX_BUCKETS:
            return
        for bucket, state in list(self._states.items()):
            if state.pending == 0 and (state.window is None or state.window.reset_at <= now):
                del self._states[bucket]


def _rate_headers(headers: Mapping[str, str] | None) -> tuple[int, int, float] | None:
    """(allowed, count, reset seconds), or None when absent or unreadable."""
    if not headers:
        return None
    try:
        allowed = int(headers["inin-ratelimit-allowed"])
        count = int(headers["inin-ratelimit-count"])
        reset = float(headers["inin-ratelimit-reset"])
    except (KeyError, ValueError, TypeError):
        return None
    if allowed < 1 or count < 0 or not 0 <= reset < math.inf:
        return None
    return allowed, count, reset
