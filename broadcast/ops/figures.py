"""The figures operators watch, read when asked: deliveries per channel and state, rate against
capacity, waiting work, units sent per minute, live alerts, and `snapshot` (all of it, for
`broadcast queues --json` and /ops). Failures and their requeue live in `broadcast.ops.failures`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Integer, Select, cast, func, or_, select

from broadcast.alerts.outcome import status_label
from broadcast.capacity import channel_rate
from broadcast.delivery import quiet_hours
from broadcast.ops.failures import failure_groups
from broadcast.ops.queues import QueueMonitor
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery, Registrant, utcnow
from broadcast.vocabulary import (
    CHANNELS,
    OPEN_STATES,
    PROBLEM_STATES,
    REACHED_STATES,
    UNREACHED_STATES,
    AlertState,
    DeliveryState,
)


@dataclass(frozen=True)
class CapacityFigure:
    channel: str
    rate: str | None  # "500/h"; None: unlimited
    used: int  # units granted in the window ending now
    limit: int | None
    window: float | None  # seconds

    @property
    def utilisation(self) -> float | None:
        return self.used / self.limit if self.limit else None


def capacity(rt: Runtime) -> list[CapacityFigure]:
    """Rate against capacity per channel, from the limiters' own sliding windows."""
    out = []
    for channel in CHANNELS:
        rate = channel_rate(rt.settings, channel)
        used = rt.limiter(channel).usage(channel)
        out.append(
            CapacityFigure(
                channel,
                str(rate) if rate else None,
                used,
                rate.count if rate else None,
                rate.seconds if rate else None,
            )
        )
    return out


def delivery_counts(engine: Engine, *, alert_ids: Sequence[int] | None = None) -> dict[Any, Any]:
    """{channel: {state: count}} over every delivery (or those of some alerts)."""
    statement: Select[*tuple[Any, ...]] = select(
        Delivery.channel, Delivery.state, func.count()
    ).group_by(Delivery.channel, Delivery.state)
    if alert_ids is not None:
        statement = statement.add_columns(Delivery.alert_id).group_by(Delivery.alert_id)
        statement = statement.where(Delivery.alert_id.in_(alert_ids))
    out: dict[Any, Any] = {}
    with engine.connect() as conn:
        for row in conn.execute(statement):
            target = out.setdefault(row[3], {}) if alert_ids is not None else out
            target.setdefault(row[0], {})[row[1]] = int(row[2])
    return out


def waiting(engine: Engine) -> dict[str, tuple[int, float]]:
    """{channel: (deliveries queued, age in seconds of the oldest)} for alerts still sending."""
    statement = (
        select(Delivery.channel, func.count(), func.min(Delivery.created_at))
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(Delivery.state == DeliveryState.QUEUED, Alert.status == AlertState.SENDING)
        .group_by(Delivery.channel)
    )
    now = utcnow()
    with engine.connect() as conn:
        return {
            c: (int(n), max(0.0, (now - oldest).total_seconds()))
            for c, n, oldest in conn.execute(statement)
        }


def held_for_quiet_hours(rt: Runtime) -> dict[str, dict[str, object]]:
    """{channel: {"held", "until", "until_local"}}: queued routine deliveries that quiet hours
    hold now (each registrant's own hours or the force's), and when the earliest hold ends."""
    now = rt.clock.now()
    tz = quiet_hours.zone(rt)
    statement = (
        select(Delivery.channel, Registrant.quiet_hours, func.count())
        .join(Alert, Alert.id == Delivery.alert_id)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(
            Delivery.state == DeliveryState.QUEUED,
            Delivery.channel.in_(quiet_hours.HELD_CHANNELS),
            Alert.status == AlertState.SENDING,
            Alert.urgent.is_(False),
        )
        .group_by(Delivery.channel, Registrant.quiet_hours)
    )
    out: dict[str, dict[str, object]] = {}
    with rt.engine.connect() as conn:
        rows = conn.execute(statement).all()
    for channel, pref, n in rows:
        quiet = quiet_hours.effective(pref, rt.settings.quiet_hours)
        end = quiet.ends_after(now, tz) if quiet else None
        if end is None:
            continue
        entry = out.setdefault(channel, {"held": 0, "until": None, "until_local": None})
        entry["held"] = int(entry["held"]) + int(n)  # type: ignore[call-overload]
        if entry["until"] is None or end < datetime.fromisoformat(str(entry["until"])):
            local = end.astimezone(tz)
            entry["until"] = end.astimezone(UTC).isoformat()
            entry["until_local"] = f"{local:%H:%M} {local.tzname()}"
    return out


def sent_per_minute(engine: Engine, *, minutes: int = 60) -> dict[str, list[int]]:
    """Units handed to providers per minute over the last `minutes`, oldest first."""
    now = utcnow()
    cutoff = now - timedelta(minutes=minutes)
    if engine.dialect.name == "sqlite":
        # Stored as UTC text; strftime('%s') reads it as UTC.
        minute = cast(func.strftime("%s", Delivery.sent_at), Integer) / 60
    else:
        minute = cast(func.floor(func.extract("epoch", Delivery.sent_at) / 60), Integer)
    statement = (
        select(Delivery.channel, minute, func.sum(Delivery.units))
        .where(Delivery.sent_at >= cutoff)
        .group_by(Delivery.channel, minute)
    )
    last = int(now.timestamp() // 60)
    out = {c: [0] * minutes for c in CHANNELS}
    with engine.connect() as conn:
        for channel, bucket, units in conn.execute(statement):
            slot = minutes - 1 - (last - int(bucket))
            if channel in out and 0 <= slot < minutes:
                out[channel][slot] += int(units or 0)
    return out


def live_alerts(
    engine: Engine, *, within: timedelta = timedelta(hours=1), limit: int = 10
) -> list[dict[str, Any]]:
    """Alerts still sending, and those finished within `within` (newest first), each with its
    `outcome` ("done, 103 expired") and {channel: {"done", "total", "failed", "reached",
    "unreached"}}: done counts every final state, reached only what reached people (sent or
    delivered), unreached {state: n} what ended without (expired, failed, ...)."""
    recent = utcnow() - within
    statement = (
        select(Alert.id, Alert.template, Alert.status, Alert.urgent, Alert.operator)
        .add_columns(Alert.created_at)
        .where(or_(Alert.status == AlertState.SENDING, Alert.finished_at >= recent))
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        alerts = [dict(row) for row in conn.execute(statement).mappings()]
    counts = delivery_counts(engine, alert_ids=[a["id"] for a in alerts]) if alerts else {}
    for a in alerts:
        a["created_at"] = a["created_at"].isoformat()
        a["outcome"] = status_label(a["status"], counts.get(a["id"], {}))
        a["channels"] = {}
        for channel, states in sorted(counts.get(a["id"], {}).items()):
            total = sum(states.values())
            open_ = sum(states.get(s, 0) for s in OPEN_STATES)
            failed = sum(states.get(s, 0) for s in PROBLEM_STATES)
            a["channels"][channel] = {
                "done": total - open_,
                "total": total,
                "failed": failed,
                "reached": sum(states.get(s, 0) for s in REACHED_STATES),
                "unreached": {s: states[s] for s in UNREACHED_STATES if states.get(s)},
            }
    return alerts


def snapshot(rt: Runtime, monitor: QueueMonitor | None, *, minutes: int = 60) -> dict[str, Any]:
    """Everything `broadcast queues --json` and /ops show, JSON-ready."""
    engine = rt.engine
    workers = monitor.workers() if monitor is not None else None
    letters = monitor.dead_letters(limit=1000) if monitor is not None else []
    dead: dict[tuple[str, str], int] = {}
    for d in letters:
        dead[d.queue, d.reason] = dead.get((d.queue, d.reason), 0) + 1
    history = sent_per_minute(engine, minutes=minutes)
    rates = {c: channel_rate(rt.settings, c) for c in CHANNELS}
    since = utcnow() - timedelta(hours=24)
    return {
        "at": utcnow().isoformat(),
        "queues": [asdict(q) for q in monitor.queues()] if monitor is not None else None,
        "workers": [asdict(w) for w in workers] if workers is not None else None,
        "capacity": [asdict(c) | {"utilisation": c.utilisation} for c in capacity(rt)],
        "waiting": {c: {"queued": n, "oldest_age": age} for c, (n, age) in waiting(engine).items()},
        "held": held_for_quiet_hours(rt),
        "alerts": live_alerts(engine),
        "failures": [
            asdict(g) | {"requeueable": g.requeueable}
            for g in failure_groups(engine, since=since, limit=20)
        ],
        "dead_letters": [
            {"queue": q, "reason": r, "count": n} for (q, r), n in sorted(dead.items())
        ],
        "history": {
            "minutes": minutes,
            "sent_per_minute": history,
            "capacity_per_minute": {
                c: (r.per_second * 60 if r else None) for c, r in rates.items()
            },
        },
    }
