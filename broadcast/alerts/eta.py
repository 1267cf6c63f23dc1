"""An alert's ETA per channel, from what the limiter will really do (`broadcast.capacity.eta`):
the units the window holds now, the work queued ahead of this alert, and quiet hours.

What is ahead: an urgent alert overtakes routine work (routine chunks step aside while urgent
work waits), so only urgent backlog is ahead of it; a routine alert has both ahead. Routine
voice calls to people in their quiet hours go when those hours end (each registrant's own hours,
or the force's), and so does any held backlog ahead. docs/capacity.md
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from broadcast.capacity import Work, channel_rate, describe, forecast
from broadcast.delivery import planning, quiet_hours
from broadcast.delivery.levels import rate_levels
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery, Registrant
from broadcast.vocabulary import AlertState, DeliveryState


@dataclass(frozen=True)
class ChannelEta:
    """One channel's forecast for one alert.

    Attributes:
      text: The line shown to the operator.
      finish: When the last message should be handed to the provider.
      expiring: Messages that would still be waiting at `expires_at` (they would expire).
      first_expiring: When the first of those would have gone, had the alert not expired.
      held: Messages held for quiet hours now.
    """

    channel: str
    units: int
    queued_ahead: int
    finish: datetime
    text: str
    expiring: int = 0
    first_expiring: datetime | None = None
    held: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "channel": self.channel,
            "units": self.units,
            "queued_ahead": self.queued_ahead,
            "finish": self.finish.isoformat(),
            "text": self.text,
            "expiring": self.expiring,
            "first_expiring": self.first_expiring.isoformat() if self.first_expiring else None,
            "held_for_quiet_hours": self.held,
        }


def channel_eta(
    rt: Runtime,
    channel: str,
    mine: dict[str | None, int],
    *,
    segments: int,
    urgent: bool,
    expires_at: datetime | None = None,
    exclude: int = 0,
    total: int | None = None,
) -> ChannelEta:
    """The forecast for `mine` ({registrant quiet-hours preference: messages}) on `channel`.

    Parameters:
      segments: Units per message of this alert (SMS segments; 1 elsewhere).
      exclude: This alert's id once it exists, so its own deliveries are not "ahead" of it.
      total: The alert's deliveries on the channel, sent or not (its chunks); default: `mine`.
    """
    now = rt.clock.now()
    # The force's own limit when it has one (the work ahead counted is the force's), else the
    # platform's (delivery.levels).
    levels = rate_levels(rt, channel)
    level = levels[0] if levels else None
    limiter = level.limiter if level and level.limiter else rt.limiter(channel)
    key = level.key if level else channel
    left = sum(mine.values())
    size = rt.settings.delivery_chunk_size
    total = max(total or left, left)
    chunks = max(1, math.ceil(total / size))
    # Chunks progress side by side, so each has sent about the same: the largest is a full one.
    largest = left if chunks == 1 else max(1, min(left, size - (total - left) // chunks))
    with rt.engine.connect() as conn:
        ahead, queued = _ahead(
            rt, conn, channel, urgent=urgent, exclude=exclude, now=now, largest_chunk=largest
        )
    units_each = segments if channel == "sms" else 1
    ours = [
        Work(n, units_each, _release(rt, pref, now, urgent, channel), ours=True)
        for pref, n in mine.items()
        if n
    ]
    deadline = (expires_at - now).total_seconds() if expires_at is not None else None
    seen = forecast(limiter.rate, [*ahead, *ours], window=limiter.window(key), deadline=deadline)
    messages = sum(w.messages for w in ours)
    units = messages * units_each
    took = timedelta(seconds=seen.seconds)
    finish = now + took
    text = describe(channel, units, channel_rate(rt.settings, channel), queued=queued, took=took)
    if took >= timedelta(minutes=1):
        local = finish.astimezone(quiet_hours.zone(rt))
        text += f" (by {local:%H:%M} {local.tzname()})"
    held = sum(w.messages for w in ours if w.release > 0)
    if held:
        # The force's hours when they hold now; else registrants' own hours hold these calls.
        note = quiet_hours.note(rt, urgent=urgent, channel=channel)
        text = f"{note or f'{held:,} routine calls held for their own quiet hours'}; {text}"
    first = now + timedelta(seconds=seen.first_late) if seen.first_late is not None else None
    return ChannelEta(channel, units, queued, finish, text, seen.late, first, held)


def preview_mine(rt: Runtime, targeting: Targeting, channel: str) -> dict[str | None, int]:
    """Recipients of a new alert on `channel`, by their quiet-hours preference; for voice,
    numbers (a household sharing a landline gets one call)."""
    sub = planning.recipients(targeting, (channel,)).subquery()
    counted = (
        func.count(func.distinct(planning.voice_number())) if channel == "voice" else func.count()
    )
    statement = (
        select(Registrant.quiet_hours, counted)
        .select_from(sub)
        .join(Registrant, Registrant.id == sub.c.registrant_id)
        .group_by(Registrant.quiet_hours)
    )
    with rt.engine.connect() as conn:
        return {pref: int(n) for pref, n in conn.execute(statement)}


def queued_mine(rt: Runtime, alert_id: int, channel: str) -> dict[str | None, int]:
    """An alert's deliveries still queued on `channel`, by quiet-hours preference."""
    statement = (
        select(Registrant.quiet_hours, func.count())
        .select_from(Delivery)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(
            Delivery.alert_id == alert_id,
            Delivery.channel == channel,
            Delivery.state == DeliveryState.QUEUED,
        )
        .group_by(Registrant.quiet_hours)
    )
    with rt.engine.connect() as conn:
        return {pref: int(n) for pref, n in conn.execute(statement)}


def _ahead(
    rt: Runtime,
    conn: Connection,
    channel: str,
    *,
    urgent: bool,
    exclude: int,
    now: datetime,
    largest_chunk: int,
) -> tuple[list[Work], int]:
    """Queued work of other sending alerts on the channel that goes before ours finishes, and
    the units queued ahead in all (what the line says: "after 1,200 queued").

    Urgent work is wholly ahead. Routine work ahead of a routine alert shares capacity with it:
    workers run chunks side by side and the limiter grants whichever asks first, so each chunk
    gets about the same share. Ours is done when its largest chunk is, and by then each other
    chunk has had at most that many messages: only that part of the other alert is ahead.
    """
    units = Delivery.units if channel != "sms" else Alert.sms_segments
    statement = (
        select(Alert.id, Alert.urgent, units, Registrant.quiet_hours, func.count())
        .select_from(Delivery)
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(
            Delivery.state == DeliveryState.QUEUED,
            Delivery.channel == channel,
            Alert.status == AlertState.SENDING,
            Alert.id != exclude,
        )
        .group_by(Alert.id, Alert.urgent, units, Registrant.quiet_hours)
    )
    if urgent:
        statement = statement.where(Alert.urgent.is_(True))
    rows = conn.execute(statement).all()
    share = _routine_shares(conn, channel, rows, rt.settings.delivery_chunk_size, largest_chunk)
    work = []
    for alert_id, their_urgency, each, pref, n in rows:
        messages = n if their_urgency or urgent else round(n * share[alert_id])
        if messages:
            release = _release(rt, pref, now, their_urgency, channel)
            work.append(Work(messages, int(each or 1), release))
    return work, sum(int(n) * int(each or 1) for _, _, each, _, n in rows)


def _routine_shares(
    conn: Connection, channel: str, rows: Sequence[Any], size: int, largest_chunk: int
) -> dict[int, float]:
    """Per other alert: the part of its queued messages done before our largest chunk is."""
    queued: dict[int, int] = {}
    for alert_id, _urgent, _each, _pref, n in rows:
        queued[alert_id] = queued.get(alert_id, 0) + int(n)
    if not queued:
        return {}
    totals = dict(
        conn.execute(
            select(Delivery.alert_id, func.count())
            .where(Delivery.alert_id.in_(sorted(queued)), Delivery.channel == channel)
            .group_by(Delivery.alert_id)
        ).all()
    )
    shares = {}
    for alert_id, left in queued.items():
        chunks = max(1, math.ceil(int(totals.get(alert_id, left)) / size))
        shares[alert_id] = min(1.0, chunks * largest_chunk / left)
    return shares


def _release(rt: Runtime, pref: str | None, now: datetime, urgent: bool, channel: str) -> float:
    """Seconds until quiet hours stop holding this registrant's routine call (0: not held)."""
    if urgent or channel not in quiet_hours.HELD_CHANNELS:
        return 0.0
    quiet = quiet_hours.effective(pref, rt.settings.quiet_hours)
    end = quiet.ends_after(now, quiet_hours.zone(rt)) if quiet else None
    return max(0.0, (end - now).total_seconds()) if end is not None else 0.0


def expiry_line(rt: Runtime, etas: Iterable[ChannelEta], expires_at: datetime) -> str | None:
    """ "103 deliveries (voice 103) would expire unsent at 21:05 BST; ...": None if none would."""
    late = [e for e in etas if e.expiring]
    if not late:
        return None
    total = sum(e.expiring for e in late)
    parts = ", ".join(f"{e.channel} {e.expiring:,}" for e in late)
    tz = quiet_hours.zone(rt)
    ends, last = expires_at.astimezone(tz), max(e.finish for e in late).astimezone(tz)
    day = "" if ends.date() == last.date() else f" on {last:%d %b}"
    return (
        f"{total:,} {'delivery' if total == 1 else 'deliveries'} ({parts}) would expire unsent "
        f"at {ends:%H:%M} {ends.tzname()}: the last would go at {last:%H:%M} {last.tzname()}{day}"
    )
