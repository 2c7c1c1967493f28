"""RatePacer's rule (genesys/pacer.py), on a fake clock: when it waits, how long, per
bucket; and a fleet of containers sharing one token against a fixed-window limiter."""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

import pytest
from attribute_bridge.genesys.pacer import MAX_RESET_SECONDS, Bucket, RatePacer

GET = Bucket.of("token-a", "GET", "/api/v2/conversations/calls/{conversationId}")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(count: int, allowed: int = 180, reset: float = 60) -> dict[str, str]:
    return {
        "inin-ratelimit-count": str(count),
        "inin-ratelimit-allowed": str(allowed),
        "inin-ratelimit-reset": f"{reset:g}",
    }


def answer(pacer: RatePacer, bucket: Bucket, count: int, **values: float) -> None:
    pacer.sending(bucket)
    pacer.answered(bucket, headers(count, **values))  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacer(clock: Clock) -> RatePacer:
    return RatePacer(clock=clock, sleep=lambda _: None)


def test_an_unknown_bucket_or_one_without_headers_goes_at_once(pacer: RatePacer) -> None:
    assert pacer.delay(GET) == 0
    pacer.sending(GET)
    pacer.answered(GET, {})  # a fault's answer, a proxy's: nothing learned
    pacer.sending(GET)
    pacer.answered(GET, None)  # a timeout
    assert pacer.delay(GET) == 0


def test_plenty_of_headroom_never_waits(pacer: RatePacer, clock: Clock) -> None:
    for count in range(1, 178):  # one container alone, back to back
        answer(pacer, GET, count)
        assert pacer.delay(GET) == 0
        clock.now += 0.01


def test_no_headroom_waits_until_the_window_resets(pacer: RatePacer, clock: Clock) -> None:
    answer(pacer, GET, 179, reset=30)
    clock.now += 0.4
    answer(pacer, GET, 180, reset=30)  # rounded up: this answer bounds the reset no better
    assert pacer.delay(GET) == pytest.approx(29.6)
    clock.now += 10
    assert pacer.delay(GET) == pytest.approx(19.6)
    clock.now += 19.6
    assert pacer.delay(GET) == 0  # the window has reset: go, and learn the new one


def test_the_last_requests_are_spread_over_what_is_left_of_the_window(clock: Clock) -> None:
    pacer = RatePacer(clock=clock, low_water=2)  # spread the last 2 per sender (default 1)
    answer(pacer, GET, 177, reset=20)  # 3 left
    assert pacer.delay(GET) == 0  # 3 > low water
    answer(pacer, GET, 178, reset=20)  # 2 left: spread, 20 s x 1 / 2 = 10 s apart
    assert pacer.delay(GET) == pytest.approx(10)
    clock.now += 4  # time spent elsewhere counts: 16 s left / 2 = 8 s after the last send
    assert pacer.delay(GET) == pytest.approx(4)


def test_a_429_answer_teaches_the_bucket_is_full(pacer: RatePacer, clock: Clock) -> None:
    answer(pacer, GET, 180, reset=7)  # a 429 carries the same headers
    assert pacer.delay(GET) == pytest.approx(7)


def test_a_fallen_count_or_a_new_limit_is_a_new_window(pacer: RatePacer, clock: Clock) -> None:
    answer(pacer, GET, 180, reset=30)
    answer(pacer, GET, 1, reset=60)  # the window reset earlier than the rounding said
    assert pacer.delay(GET) == 0
    answer(pacer, GET, 2, allowed=3, reset=60)  # another limit
    assert pacer.delay(GET) == pytest.approx(60)  # 1 left of 3: the rest of the window


@pytest.mark.parametrize("low_water", [1.0, 2.0])
def test_the_share_of_other_containers_is_measured_from_the_count(
    clock: Clock, low_water: float
) -> None:
    pacer = RatePacer(clock=clock, low_water=low_water)
    # The count grows by 10 per request of ours: 9 other containers on the same token.
    for count in range(100, 151, 10):
        answer(pacer, GET, count, reset=30)
        # at 150: 180 - 150 - 4.5 (half the others' in-flight) = 25.5 > 2 x 10: no wait
        assert pacer.delay(GET) == 0
        clock.now += 0.1
    answer(pacer, GET, 160, reset=30)  # 15.5 left: <= 2 x 10, spread our tenth of it
    left = 1030 - clock.now  # the reset the first answer gave
    spread = left * 10 / 15.5
    assert pacer.delay(GET) == pytest.approx(spread if low_water == 2 else 0)
    clock.now += 0.1
    answer(pacer, GET, 170, reset=30)  # 5.5 left: less than one each before the reset
    assert pacer.delay(GET) == pytest.approx(1030 - clock.now)


def test_buckets_are_per_endpoint_and_per_token(pacer: RatePacer) -> None:
    answer(pacer, GET, 180, reset=30)
    patch = Bucket.of("token-a", "PATCH", "/api/v2/conversations/{conversationId}/attributes")
    other_token = Bucket.of("token-b", "GET", GET.path)
    assert pacer.delay(GET) > 0
    assert pacer.delay(patch) == 0
    assert pacer.delay(other_token) == 0
    assert "token-a" not in repr(GET)  # a digest, not the token


@pytest.mark.parametrize(
    "bad",
    [
        {"inin-ratelimit-count": "x", "inin-ratelimit-allowed": "180", "inin-ratelimit-reset": "9"},
        {"inin-ratelimit-count": "5", "inin-ratelimit-allowed": "0", "inin-ratelimit-reset": "9"},
        {"inin-ratelimit-count": "180", "inin-ratelimit-allowed": "180"},
        {
            "inin-ratelimit-count": "180",
            "inin-ratelimit-allowed": "180",
            "inin-ratelimit-reset": "nan",
        },
    ],
)
def test_unreadable_headers_are_ignored(pacer: RatePacer, bad: dict[str, str]) -> None:
    pacer.sending(GET)
    pacer.answered(GET, bad)
    assert pacer.delay(GET) == 0


def test_an_absurd_reset_is_capped_to_the_minute(pacer: RatePacer) -> None:
    answer(pacer, GET, 180, reset=86400)
    assert pacer.delay(GET) == MAX_RESET_SECONDS


# ---- a fleet on one token -------------------------------------------------------------


@dataclass
class FixedWindow:
    """The emulator's limiter: a fixed window opened by the first request after the last
    closed; a full window answers 429 with Retry-After = whole seconds left (>= 1)."""

    limit: int
    window: float
    started: float = -math.inf
    used: int = 0
    served: int = 0
    limited: int = 0

    def take(self, now: float) -> tuple[bool, dict[str, str]]:
        if now >= self.started + self.window:
            self.started, self.used = now, 0
        reset = max(1, math.ceil(self.started + self.window - now))
        if self.used >= self.limit:
            self.limited += 1
            return False, headers(self.used, self.limit, reset)
        self.used += 1
        self.served += 1
        return True, headers(self.used, self.limit, reset)


@dataclass(order=True)
class Step:
    at: float
    seq: int
    container: int = field(compare=False)
    kind: str = field(compare=False)  # "try" or "answer"
    answer: tuple[bool, dict[str, str]] | None = field(compare=False, default=None)


def run_fleet(containers: int, paced: bool, seconds: float = 60.0) -> FixedWindow:
    """`containers` each sending back to back (a backlog), 20 ms per round trip; a 429 is
    waited out for its Retry-After, as GenesysClient does."""
    clock = Clock()
    start = clock.now
    limiter = FixedWindow(limit=180, window=10.0)
    pacers = [RatePacer(clock=clock, sleep=lambda _: None) for _ in range(containers)]
    steps = [Step(start + i * 0.002, i, i, "try") for i in range(containers)]
    heapq.heapify(steps)
    seq = containers
    while steps and steps[0].at < start + seconds:
        step = heapq.heappop(steps)
        clock.now = step.at
        pacer, seq = pacers[step.container], seq + 1
        if step.kind == "try":
            wait = pacer.delay(GET) if paced else 0.0
            if wait > 0:
                heapq.heappush(steps, Step(step.at + wait, seq, step.container, "try"))
                continue
            pacer.sending(GET)
            taken = limiter.take(step.at + 0.01)  # decided halfway through the round trip
            heapq.heappush(steps, Step(step.at + 0.02, seq, step.container, "answer", taken))
        else:
            assert step.answer is not None
            ok, answered = step.answer
            pacer.answered(GET, answered)
            retry_after = 0.0 if ok else float(answered["inin-ratelimit-reset"])
            heapq.heappush(steps, Step(step.at + retry_after, seq, step.container, "try"))
    return limiter


@pytest.mark.parametrize("containers", [1, 10, 30])
def test_a_fleet_sharing_a_token_paces_without_losing_throughput(containers: int) -> None:
    unpaced = run_fleet(containers, paced=False)
    paced = run_fleet(containers, paced=True)
    # 6 windows of 180: the limit is the bound either way
    assert unpaced.served <= 6 * 180 and paced.served <= 6 * 180
    assert paced.served >= 0.9 * unpaced.served
    # without the pacer every container meets a 429 in every window
    assert unpaced.limited >= 5 * containers
    assert paced.limited <= max(2, unpaced.limited // 5)
