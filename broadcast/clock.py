"""An injectable clock: lifecycle code asks it for the time, so tests can set the time instead of
sleeping (quiet hours across a DST change, schedules, escalation windows).

A `Runtime` carries one (`rt.clock`, the system clock unless given).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """Stands still until moved: `clock.at = ...` or `clock.advance(minutes=5)`."""

    at: datetime

    def now(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at = self.at + timedelta(**delta)


SYSTEM = SystemClock()


def aware(when: datetime) -> datetime:
    """A naive datetime (typed by a person, handed by a provider's SDK) taken to be UTC. Columns
    need none of this: they come back aware (broadcast/store/utc.py)."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)
