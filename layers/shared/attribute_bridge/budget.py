"""Time left in the current invocation, so that no wait or retry outlives it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass
class Budget:
    """A deadline on the monotonic clock. `reserve` is kept back for the handler's own
    work after the last remote call (publishing an event, writing idempotency state)."""

    deadline: float
    reserve: float = 1.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def from_context(cls, context: LambdaContextLike | None, reserve: float = 1.0) -> Budget:
        if context is None:  # called outside Lambda (a script, a test): a generous default
            return cls.seconds(30.0, reserve)
        return cls.seconds(context.get_remaining_time_in_millis() / 1000.0, reserve)

    @classmethod
    def seconds(cls, seconds: float, reserve: float = 1.0) -> Budget:
        return cls(deadline=time.monotonic() + seconds, reserve=reserve)

    def remaining(self) -> float:
        """Seconds that may still be spent on remote calls and waits."""
        return max(0.0, self.deadline - self.reserve - self.clock())

    def allows(self, seconds: float) -> bool:
        return seconds <= self.remaining()
