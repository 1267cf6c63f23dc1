"""How long a send will take on a channel of limited capacity, and how to say it to a person.

The model is the limiter itself, replayed: an exact sliding log (docs/capacity.md) with workers
always ready, so a message is granted at the first moment its units fit in the window. A unit
granted at t frees at t + DURATION (the limiter's rate, which includes the capacity guard), so
on an idle channel 79 calls at 60/m take one full window, not 79/60 of one: 60 go at once, the
last 19 at +60 s. Work is granted in order of when it may go (`Work.release`: quiet hours), and
what is queued ahead goes before this alert's work released at the same moment.

Beyond COUNT messages in a homogeneous batch the replay is periodic (each message is granted one
window after the message COUNT/units before it), so it is computed in closed form: the cost is
O(COUNT) per batch, not O(messages).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from broadcast.capacity.rate import Rate
from broadcast.errors import InvalidInput

# What one unit is on each channel: SMS capacity counts segments, as the providers do.
UNIT_NAMES = {
    "voice": ("call", "calls"),
    "sms": ("segment", "segments"),
    "email": ("email", "emails"),
}


@dataclass(frozen=True)
class Work:
    """Messages waiting for a channel.

    Attributes:
      messages: How many messages.
      units: Units each message takes (SMS segments; 1 otherwise).
      release: Seconds from now before they may go (0: now; quiet hours hold routine calls).
      ours: True for the alert being estimated; False for work queued ahead of it.
    """

    messages: int
    units: int = 1
    release: float = 0.0
    ours: bool = False


@dataclass(frozen=True)
class Forecast:
    """When this alert's last message is granted, and how many of its messages miss a deadline.

    Attributes:
      seconds: From now until the last of `ours` is granted (0.0 when nothing waits).
      late: Messages of `ours` granted after the deadline (0 without one).
      first_late: Seconds from now of the first of those, or None.
    """

    seconds: float
    late: int = 0
    first_late: float | None = None


def forecast(
    rate: Rate | None,
    work: Sequence[Work],
    *,
    window: Sequence[float] = (),
    deadline: float | None = None,
) -> Forecast:
    """Replay the sliding log over `work` (see module doc).

    Parameters:
      rate: The limiter's rate (with its guard); None (unlimited) grants everything at release.
      work: This alert's messages (`ours=True`) and what is queued ahead of it.
      window: Grant times, in seconds relative to now (<= 0), of the units the window holds now.
      deadline: Seconds from now; messages of ours granted later are counted as `late`.
    """
    for w in work:
        for name in ("messages", "units"):
            value = getattr(w, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{name} must be a whole number >= 0, not {value!r}", field=name)
    replay = _Replay(rate, window, deadline)
    # Ahead first among work released at the same moment (a stable sort keeps the given order).
    for w in sorted(work, key=lambda w: (max(0.0, w.release), w.ours)):
        if w.messages:
            replay.run(w)
    return Forecast(max(0.0, replay.last), replay.late, replay.first_late)


class _Replay:
    def __init__(self, rate: Rate | None, window: Sequence[float], deadline: float | None) -> None:
        self.rate, self.deadline = rate, deadline
        # Messages in the window, oldest first: [grant time, units].
        self.log: deque[list[float]] = deque([t, 1] for t in sorted(window))
        self.used = len(self.log)
        self.now = 0.0  # the replay's clock: grants never go back in time
        self.last = 0.0
        self.late = 0
        self.first_late: float | None = None

    def run(self, w: Work) -> None:
        self.now = max(self.now, w.release)
        if self.rate is None:
            self._granted(w, self.now, w.messages)
            return
        count, seconds = self.rate.count, self.rate.seconds
        units = min(max(1, w.units), count)
        per_window = count // units
        left = w.messages
        while left:
            self._trim(self.now)
            if self._periodic(units, per_window) and left > per_window:
                self._jump(w, units, per_window, left)
                return
            excess = self.used + units - count
            while excess > 0:
                at, n = self.log.popleft()
                self.used -= int(n)
                excess -= int(n)
                self.now = max(self.now, at + seconds)
            self.log.append([self.now, units])
            self.used += units
            self._granted(w, self.now, 1)
            left -= 1

    def _trim(self, now: float) -> None:
        assert self.rate is not None
        while self.log and self.log[0][0] + self.rate.seconds <= now:
            self.used -= int(self.log.popleft()[1])

    def _periodic(self, units: int, per_window: int) -> bool:
        """The window holds exactly `per_window` messages of `units`: from here each message is
        granted one window after the one `per_window` before it."""
        return len(self.log) == per_window and all(n == units for _, n in self.log)

    def _jump(self, w: Work, units: int, per_window: int, left: int) -> None:
        assert self.rate is not None
        seconds = self.rate.seconds
        bases = [at for at, _ in self.log]
        full, extra = divmod(left, per_window)
        ends = []
        for phase, base in enumerate(bases):
            k = full + (1 if phase < extra else 0)  # messages of this phase still to go
            if not k:
                ends.append(base)
                continue
            ends.append(base + k * seconds)
            if w.ours and self.deadline is not None:
                on_time = max(0, min(k, math.floor((self.deadline - base) / seconds)))
                if k > on_time:
                    self.late += k - on_time
                    first = base + (on_time + 1) * seconds
                    self.first_late = min(self.first_late or first, first)
        self.log = deque(sorted([at, units] for at in ends))
        self.now = max(ends)
        if w.ours:
            self.last = max(self.last, self.now)

    def _granted(self, w: Work, at: float, messages: int) -> None:
        if not w.ours:
            return
        self.last = max(self.last, at)
        if self.deadline is not None and at > self.deadline:
            self.late += messages
            self.first_late = at if self.first_late is None else min(self.first_late, at)


def estimate(
    units: int,
    rate: Rate | None,
    *,
    queued: int = 0,
    window: Sequence[float] = (),
) -> timedelta:
    """Time until the last of `units` (one unit each) is granted after `queued` units ahead.

    Parameters:
      units: Units this send needs (calls, SMS segments, emails).
      rate: The limiter's rate; None (unlimited) gives zero.
      queued: Units already queued ahead on the same channel.
      window: Grant times (seconds relative to now, <= 0) of the units in the window now;
        empty for an idle channel.
    """
    for name, value in (("units", units), ("queued", queued)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number >= 0, not {value!r}", field=name)
    work = [Work(queued), Work(units, ours=True)]
    return timedelta(seconds=forecast(rate, work, window=window).seconds)


def finish_at(
    units: int,
    rate: Rate | None,
    *,
    queued: int = 0,
    window: Sequence[float] = (),
    now: datetime | None = None,
) -> datetime:
    """When the last of `units` should be granted (timezone-aware; `now` defaults to UTC now)."""
    start = now if now is not None else datetime.now(UTC)
    return start + estimate(units, rate, queued=queued, window=window)


def describe(
    channel: str, units: int, rate: Rate | None, *, queued: int = 0, took: timedelta
) -> str:
    """A line for the sender: "5,000 calls at 500/h after 1,200 queued: about 12 h 24 min"."""
    singular, plural = UNIT_NAMES.get(channel, ("unit", "units"))
    what = f"{units:,} {singular if units == 1 else plural}"
    if rate is None:
        return f"{what} (no capacity limit): no wait for capacity"
    ahead = f" after {queued:,} queued" if queued else ""
    when = f"about {human_duration(took)}" if took > timedelta(0) else "no wait for capacity"
    return f"{what} at {rate}{ahead}: {when}"


def human_duration(duration: timedelta) -> str:
    """Round to what a person needs: "40 s", "7 min", "12 h 24 min", "2 d 3 h"."""
    seconds = duration.total_seconds()
    if seconds < 59.5:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(round(seconds / 3600), 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
