"""Quiet hours: routine voice calls are not made at night.

The force sets a default (`BROADCAST_QUIET_HOURS=21:00-08:00`, local time in
`BROADCAST_TIMEZONE`); a registrant may set their own ("22:30-07:00") or "off". Deliveries of a
routine alert that fall in the quiet hours stay `queued` (held, never failed) and the chunk is
queued again with a delay until the earliest hold ends. Urgent alerts go through. Local times are
converted with zoneinfo, so a hold across a DST change ends at the right wall-clock time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from broadcast.errors import InvalidInput
from broadcast.store.tables import Registrant

HELD_CHANNELS = ("voice",)
OFF = "off"
_PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> QuietHours | None:
        """'21:00-08:00' -> QuietHours; 'off' (or an empty range like 08:00-08:00) -> None."""
        cleaned = text.strip().lower().replace(" ", "")
        if cleaned in (OFF, "none", ""):
            return None
        match = _PATTERN.match(cleaned)
        if not match:
            raise InvalidInput(
                f"quiet hours {text!r} must look like 21:00-08:00 (24-hour, local time) or 'off'"
            )
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if (h1, m1) == (h2, m2):
            return None
        return cls(time(h1, m1), time(h2, m2))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # across midnight

    def ends_after(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When the quiet hours that `now` falls in end (aware), or None if `now` is not quiet."""
        local = now.astimezone(zone)
        if not self.contains(local.time().replace(tzinfo=None)):
            return None
        day = local.date()
        if local.time().replace(tzinfo=None) >= self.end:
            day += timedelta(days=1)
        # The wall-clock end on that day, in that day's UTC offset (BST or GMT).
        return datetime.combine(day, self.end, tzinfo=zone)


def normalise(text: str) -> str | None:
    """What to store for a registrant: '21:00-08:00', 'off', or None for 'default'."""
    if text.strip().lower() in ("default", ""):
        return None
    parsed = QuietHours.parse(text)
    return OFF if parsed is None else str(parsed)


def effective(preference: str | None, force_default: str) -> QuietHours | None:
    return QuietHours.parse(preference if preference else force_default)


def zone(rt: Any) -> ZoneInfo:
    return ZoneInfo(rt.settings.timezone)


def hold_back(
    rt: Any, conn: Connection, alert: Any, channel: str, batch: Sequence[Any]
) -> tuple[list[Any], float | None]:
    """Split a batch into what may be sent now and what is held for quiet hours.

    Returns the recipients to send and, when some are held and a broker will keep a delayed
    message (Redis), the seconds until the earliest hold ends; without Redis the held rows simply
    stay queued for `broadcast scheduler run` to pick up.
    """
    if alert.urgent or channel not in HELD_CHANNELS or not batch:
        return list(batch), None
    ids = sorted({r.registrant_id for r in batch})
    prefs = dict(
        conn.execute(
            select(Registrant.id, Registrant.quiet_hours).where(Registrant.id.in_(ids))
        ).all()
    )
    now, tz = rt.clock.now(), zone(rt)
    kept, ends = [], []
    for recipient in batch:
        quiet = effective(prefs.get(recipient.registrant_id), rt.settings.quiet_hours)
        end = quiet.ends_after(now, tz) if quiet else None
        if end is None:
            kept.append(recipient)
        else:
            ends.append(end)
    if not ends or not rt.settings.redis_url:
        return kept, None
    return kept, max(1.0, (min(ends) - now).total_seconds())


def earliest(a: float | None, b: float | None) -> float | None:
    return min(a, b) if a is not None and b is not None else (a if b is None else b)


def note(rt: Any, *, urgent: bool, channel: str) -> str | None:
    """For ETAs: 'held for quiet hours (21:00-08:00) until 08:00' when that applies now."""
    if urgent or channel not in HELD_CHANNELS:
        return None
    quiet = QuietHours.parse(rt.settings.quiet_hours)
    end = quiet.ends_after(rt.clock.now(), zone(rt)) if quiet else None
    if end is None:
        return None
    return f"routine calls held for quiet hours ({quiet}) until {end:%H:%M} {end.tzname()}"


def set_preference(*, session: Any, registrant: Registrant, text: str) -> list[str]:
    """A registrant's own quiet hours ('22:00-07:00', 'off', or 'default'); ['quiet_hours'] if
    it changed, for the caller's audit and ledger lines."""
    value = normalise(text)
    if registrant.quiet_hours == value:
        return []
    registrant.quiet_hours = value
    session.add(registrant)
    return ["quiet_hours"]


def shown(preference: str | None, force_default: str) -> str:
    """How a preference reads on the manage page and in `registrants show`."""
    if preference == OFF:
        return "off (calls at any time)"
    return preference or f"{force_default} (the default)"
