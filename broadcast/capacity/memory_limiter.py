"""The in-process twin of RedisLimiter, for the embedded default (one process, no Redis)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from broadcast.capacity.limiter import Attempt, CapacityLimiter
from broadcast.capacity.rate import Rate


class MemoryLimiter(CapacityLimiter):
    """Exact sliding-window limiter for the threads of one process; same rules as RedisLimiter.

    Parameters:
      rate: The capacity, or None for no limit.
      clock: Seconds from a clock that never goes back; time.monotonic unless a test gives one.
      jitter: See CapacityLimiter.
    """

    def __init__(
        self,
        rate: Rate | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        jitter: float = 0.005,
    ) -> None:
        super().__init__(rate, jitter=jitter)
        self._clock = clock
        self._lock = threading.Lock()
        # Per key, one grant time per unit, oldest first: the same log the Redis script keeps.
        self._logs: dict[str, deque[float]] = {}

    def _attempt(self, key: str, units: int, rate: Rate) -> Attempt:
        with self._lock:
            now = self._clock()
            log = self._trimmed(key, now, rate)
            excess = len(log) + units - rate.count
            if excess > 0:
                return Attempt(False, log[excess - 1] + rate.seconds - now, now)
            log.extend([now] * units)
            return Attempt(True, 0.0, now)

    def _usage(self, key: str, rate: Rate) -> int:
        with self._lock:
            return len(self._trimmed(key, self._clock(), rate))

    def _window(self, key: str, rate: Rate) -> list[float]:
        with self._lock:
            now = self._clock()
            return [t - now for t in self._trimmed(key, now, rate)]

    def _now(self) -> float:
        return self._clock()

    def _trimmed(self, key: str, now: float, rate: Rate) -> deque[float]:
        """The key's log without grants older than the window (a grant frees at t + seconds)."""
        log = self._logs.setdefault(key, deque())
        cutoff = now - rate.seconds
        while log and log[0] <= cutoff:
            log.popleft()
        return log
