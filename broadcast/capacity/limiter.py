"""The interface every capacity limiter offers: an exact sliding window over units granted."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

from broadcast.capacity.rate import Rate
from broadcast.errors import ConfigurationError, InvalidInput

# Sleeping never shorter than this keeps a waiter from spinning on a wait of a few microseconds.
MIN_SLEEP = 0.0005


class ExceedsCapacity(ConfigurationError):
    """A single send needs more units than the window allows, so it could never be granted."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of asking for units.

    Attributes:
      granted: True when the units were granted and recorded.
      wait: Seconds until enough capacity frees for these units; 0.0 when granted.
      at: The limiter's clock (seconds) when it decided: Redis TIME, or time.monotonic in-process.
    """

    granted: bool
    wait: float
    at: float

    def __bool__(self) -> bool:
        return self.granted


class CapacityLimiter(ABC):
    """At most `rate.count` units in any window of `rate.seconds`, per key (one key per channel).

    A window is half-open: a unit granted at time t counts until t + rate.seconds, and frees at
    that instant. A rate of None means unlimited: everything is granted and nothing recorded.

    Parameters:
      rate: The capacity, or None for no limit.
      jitter: Upper bound (seconds) of the random delay added to every sleep, so waiters that
        were told the same free time do not all wake at once. The earliest waker wins, so it
        costs about jitter / (waiters + 1) of lateness per window.
    """

    def __init__(self, rate: Rate | None, *, jitter: float = 0.005) -> None:
        self.rate = rate
        self.jitter = jitter

    @abstractmethod
    def _attempt(self, key: str, units: int, rate: Rate) -> Attempt:
        """Grant and record `units` if they fit, atomically; else say how long until they would."""

    @abstractmethod
    def _usage(self, key: str, rate: Rate) -> int:
        """Units granted in the window ending now."""

    @abstractmethod
    def _window(self, key: str, rate: Rate) -> list[float]:
        """Grant times of the units in the window ending now, relative to now (<= 0), oldest
        first."""

    @abstractmethod
    def _now(self) -> float:
        """The limiter's clock, in seconds."""

    def attempt(self, key: str, units: int = 1) -> Attempt:
        """Grant `units` now if the window has room, else grant nothing and report the wait.

        Raises:
          InvalidInput: `units` is not a whole number >= 1.
          ExceedsCapacity: `units` is more than the rate's count, so could never be granted.
        """
        self._check_units(units)
        if self.rate is None:
            return Attempt(True, 0.0, self._now())
        return self._attempt(key, units, self.rate)

    def try_acquire(self, key: str, units: int = 1) -> float:
        """0.0 when `units` were granted (and recorded); else the seconds until they would fit."""
        return self.attempt(key, units).wait

    def wait_for(self, key: str, units: int = 1, *, max_wait: float) -> Attempt:
        """Sleep until `units` are granted, or give up as soon as the wait would pass `max_wait`.

        Returns:
          The granted attempt, or the refused one whose `wait` tells the caller when to try again
          (so a queued job can be re-scheduled instead of holding a worker thread).
        """
        deadline = time.monotonic() + max_wait
        while True:
            attempt = self.attempt(key, units)
            if attempt.granted:
                return attempt
            remaining = deadline - time.monotonic()
            if attempt.wait > remaining:
                return attempt
            # Sleep to the exact moment enough units free, plus a little jitter against a herd.
            nap = max(attempt.wait, MIN_SLEEP) + random.uniform(0, self.jitter)
            time.sleep(min(nap, max(remaining, MIN_SLEEP)))

    def acquire(self, key: str, units: int = 1, *, max_wait: float) -> bool:
        """True once `units` are granted; False at once if that would take more than max_wait."""
        return self.wait_for(key, units, max_wait=max_wait).granted

    def usage(self, key: str) -> int:
        """Units granted in the window ending now (0 when unlimited), for operator displays."""
        if self.rate is None:
            return 0
        return self._usage(key, self.rate)

    def window(self, key: str) -> list[float]:
        """Grant times (seconds before now, as negative numbers) of the units the window holds,
        oldest first; empty when unlimited. What an ETA needs to replay the limiter."""
        if self.rate is None:
            return []
        return self._window(key, self.rate)

    def _check_units(self, units: int) -> None:
        if isinstance(units, bool) or not isinstance(units, int) or units < 1:
            raise InvalidInput(f"units must be a whole number >= 1, not {units!r}", field="units")
        if self.rate is not None and units > self.rate.count:
            raise ExceedsCapacity(
                f"a send of {units} units can never fit in a capacity of {self.rate}; "
                f"raise the count to at least {units} or send fewer units at once"
            )
