"""How long a send will take on a channel of limited capacity, and how to say it to a person.

The model, precisely: the ETA is the time from now until the last unit is granted, assuming
workers are always ready to send (a backlog) and the units queued ahead go first. `available`
units (COUNT minus what the window already holds: `limiter.usage()`) go at once; every unit
after them goes at the rate's average, COUNT per DURATION:

    seconds = max(0, queued + units - available) * DURATION / COUNT

The default `available=0` assumes the window is already full, which is what a channel with a
backlog looks like. A sliding log grants in bursts (a freed window refills at once), so the real
finish can differ from this by up to one window either way; for an idle channel given
available=COUNT, the estimate is exact whenever queued + units - COUNT is a multiple of COUNT.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcast.capacity.rate import Rate
from broadcast.errors import InvalidInput

# What one unit is on each channel: SMS capacity counts segments, as the providers do.
UNIT_NAMES = {
    "voice": ("call", "calls"),
    "sms": ("segment", "segments"),
    "email": ("email", "emails"),
}


def estimate(units: int, rate: Rate | None, *, queued: int = 0, available: int = 0) -> timedelta:
    """Time until the last of `units` is granted, after `queued` units ahead (see module doc).

    Parameters:
      units: Units this send needs (calls, SMS segments, emails).
      rate: The channel's capacity; None (unlimited) gives zero.
      queued: Units already queued ahead on the same channel.
      available: Units the current window can still take at once (0 to COUNT).
    """
    for name, value in (("units", units), ("queued", queued), ("available", available)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number >= 0, not {value!r}", field=name)
    if rate is None:
        return timedelta(0)
    waiting = max(0, queued + units - min(available, rate.count))
    return timedelta(seconds=waiting * rate.seconds / rate.count)


def finish_at(
    units: int,
    rate: Rate | None,
    *,
    queued: int = 0,
    available: int = 0,
    now: datetime | None = None,
) -> datetime:
    """When the last of `units` should be granted (timezone-aware; `now` defaults to UTC now)."""
    start = now if now is not None else datetime.now(UTC)
    return start + estimate(units, rate, queued=queued, available=available)


def describe(
    channel: str, units: int, rate: Rate | None, *, queued: int = 0, available: int = 0
) -> str:
    """A line for the sender: "5,000 calls at 500/h after 1,200 queued: about 12 h 24 min"."""
    singular, plural = UNIT_NAMES.get(channel, ("unit", "units"))
    what = f"{units:,} {singular if units == 1 else plural}"
    if rate is None:
        return f"{what} (no capacity limit): no wait for capacity"
    ahead = f" after {queued:,} queued" if queued else ""
    took = estimate(units, rate, queued=queued, available=available)
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
