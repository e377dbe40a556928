"""Time for one request: an injectable `Clock`, the request's `Deadline`, and the `Backoff` between
tries. Why everything goes through a clock: docs/design.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Clock:
    """Monotonic time for durations, wall time for dates, and sleep."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


SYSTEM_CLOCK = Clock()


class Deadline:
    """The moment by which everything one request does must be finished."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock = clock
        self._at = clock.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self._at - self._clock.monotonic())

    def allows_wait(self, seconds: float) -> bool:
        """Whether waiting `seconds` still leaves time for something after the wait."""
        return seconds < self.remaining()


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: `base` doubling per retry, capped at `cap`.

    The wait is drawn uniformly from the upper half of the step ("equal jitter"): callers that
    failed together spread out, yet every wait stays close to the schedule a reader expects.
    """

    base: float = 0.5
    cap: float = 8.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1 for the first retry)."""
        step = min(self.cap, self.base * 2.0 ** (retry - 1))
        return step / 2 + self.rng.uniform(0, step / 2)
