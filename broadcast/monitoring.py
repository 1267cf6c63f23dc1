"""What operators watch and fix: failures by reason, requeue, counts, capacity, queue figures.

The database says what happened to every delivery; the broker (behind the `QueueMonitor`
protocol, implemented in `workers/monitor.py`) says what is queued, delayed, running or
dead-lettered and which workers are alive. This module never imports Dramatiq. docs/operations.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, Integer, cast, func, or_, select, update

from broadcast import audit, planning
from broadcast.alerts import parse_duration
from broadcast.capacity import channel_rate
from broadcast.delivery_records import load_alert
from broadcast.dispatch import CHANNELS, Chunk, Dispatcher
from broadcast.models import Alert, AlertStatus, Delivery, DeliveryState, utcnow
from broadcast.recovery import give_up_chunk
from broadcast.runtime import Runtime

# What `failures list` shows; only `failed` (minus render errors) is ever put back.
PROBLEM_STATES = (
    DeliveryState.FAILED,
    DeliveryState.UNDELIVERABLE,
    DeliveryState.IN_DOUBT,
    DeliveryState.SUPPRESSED,
)


@dataclass(frozen=True)
class QueueFigures:
    """Messages of one queue: waiting, delayed (retries, capacity waits), taken by a worker
    (running or prefetched) and dead-lettered."""

    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


@dataclass(frozen=True)
class WorkerSeen:
    id: str
    seen_ago: float  # seconds since its last heartbeat
    queues: tuple[str, ...]
    pid: int | None = None
    host: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message the broker gave up on; `chunk` when it was a delivery chunk."""

    queue: str
    message_id: str
    actor: str
    chunk: Chunk | None
    dead_at: datetime | None
    reason: str


class QueueMonitor(Protocol):
    """The broker seen from outside (Redis layout or stub broker)."""

    def queues(self) -> list[QueueFigures]: ...

    def workers(self) -> list[WorkerSeen] | None:
        """Workers alive now; None when the broker cannot tell."""
        ...

    def dead_letters(self, limit: int = 10_000) -> list[DeadLetter]: ...

    def remove_dead_letters(self, letters: Sequence[DeadLetter]) -> int: ...


@dataclass(frozen=True)
class FailureGroup:
    channel: str
    state: str
    code: str | None
    reason: str | None
    count: int
    alerts: int

    @property
    def requeueable(self) -> bool:
        """Transient failures that ran out of tries; never suppressed, undeliverable, in doubt
        or a template that cannot render."""
        return self.state == DeliveryState.FAILED and self.code != "render"


@dataclass
class RequeueReport:
    deliveries: int = 0
    messages: int = 0
    alerts: tuple[int, ...] = ()
    dead_letters: int = 0


def failure_groups(
    engine: Engine,
    *,
    alert_id: int | None = None,
    channel: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[FailureGroup]:
    """Deliveries that did not go out, grouped by channel, state, code and reason, biggest first."""
    count = func.count()
    statement = (
        select(
            Delivery.channel,
            Delivery.state,
            Delivery.error_code,
            Delivery.error_text,
            count,
            func.count(func.distinct(Delivery.alert_id)),
        )
        .where(Delivery.state.in_(PROBLEM_STATES))
        .group_by(Delivery.channel, Delivery.state, Delivery.error_code, Delivery.error_text)
        .order_by(count.desc(), Delivery.channel)
        .limit(limit)
    )
    statement = _filtered(statement, alert_id, channel)
    if since is not None:
        statement = statement.where(Delivery.finished_at >= since)
    with engine.connect() as conn:
        return [FailureGroup(*row) for row in conn.execute(statement)]


def _filtered(statement, alert_id: int | None, channel: str | None):  # type: ignore[no-untyped-def]
    if alert_id is not None:
        statement = statement.where(Delivery.alert_id == alert_id)
    if channel:
        statement = statement.where(Delivery.channel == channel)
    return statement


def matching_letters(
    letters: Sequence[DeadLetter], *, alert_id: int | None = None, channel: str | None = None
) -> list[DeadLetter]:
    """Dead letters for an alert/channel; without a filter, all of them (chunks or not)."""
    if alert_id is None and not channel:
        return list(letters)
    return [
        d
        for d in letters
        if d.chunk is not None
        and (alert_id is None or d.chunk.alert_id == alert_id)
        and (not channel or d.chunk.channel == channel)
    ]


def settle_dead_letters(rt: Runtime, monitor: QueueMonitor, letters: Sequence[DeadLetter]) -> int:
    """Record each dead chunk's unfinished deliveries as `failed` (with the broker's reason),
    then drop the dead letters: the database keeps the record, the broker need not."""
    for letter in letters:
        if letter.chunk is not None:
            give_up_chunk(rt, letter.chunk, f"dead-lettered: {letter.reason}"[:300])
    return monitor.remove_dead_letters(letters)


def purge_dead_letters(
    rt: Runtime,
    monitor: QueueMonitor,
    *,
    operator: str,
    alert_id: int | None = None,
    channel: str | None = None,
) -> int:
    """`failures purge`: settle and drop dead letters; audited as failures.purged."""
    letters = matching_letters(monitor.dead_letters(), alert_id=alert_id, channel=channel)
    removed = settle_dead_letters(rt, monitor, letters)
    with rt.engine.begin() as conn:
        audit.record(
            conn,
            operator=operator,
            action="failures.purged",
            subject=f"alert {alert_id}" if alert_id is not None else None,
            details={"dead_letters": removed, "channel": channel},
        )
    return removed


def requeue_failures(
    rt: Runtime,
    dispatcher: Dispatcher,
    *,
    operator: str,
    monitor: QueueMonitor | None = None,
    alert_id: int | None = None,
    channel: str | None = None,
) -> RequeueReport:
    """Put transient failures back: dead letters are settled first (their deliveries become
    `failed`), then every `failed` delivery (not `render`) of a not-cancelled alert is queued
    again with fresh attempts and sent through `dispatcher`. Audited as failures.requeued."""
    report = RequeueReport()
    if monitor is not None:
        letters = matching_letters(monitor.dead_letters(), alert_id=alert_id, channel=channel)
        report.dead_letters = settle_dead_letters(rt, monitor, letters)
    retryable = [
        Delivery.state == DeliveryState.FAILED,
        Delivery.error_code.is_distinct_from("render"),
    ]
    find = _filtered(
        select(Delivery.alert_id, Delivery.channel)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(*retryable, Alert.status != AlertStatus.CANCELLED)
        .distinct(),
        alert_id,
        channel,
    )
    with rt.engine.connect() as conn:
        pairs = sorted(set(conn.execute(find).tuples()))
    expiry = utcnow() + parse_duration(rt.settings.alert_default_expiry)
    for one_alert in sorted({a for a, _ in pairs}):
        channels = tuple(sorted(c for a, c in pairs if a == one_alert))
        with rt.engine.begin() as conn:
            moved = conn.execute(
                update(Delivery)
                .where(Delivery.alert_id == one_alert, Delivery.channel.in_(channels), *retryable)
                .values(state=DeliveryState.QUEUED, attempts=0, finished_at=None)
            ).rowcount
            alert = load_alert(rt.engine, one_alert)
            assert alert is not None
            conn.execute(
                update(Alert)
                .where(Alert.id == one_alert)
                .values(
                    status=AlertStatus.SENDING,
                    finished_at=None,
                    expires_at=max(_aware(alert.expires_at), expiry),
                )
            )
        report.deliveries += int(moved or 0)
        with rt.engine.connect() as conn:
            report.messages += planning.enqueue_alert(
                conn, dispatcher, alert, size=rt.settings.delivery_chunk_size, channels=channels
            )
    report.alerts = tuple(sorted({a for a, _ in pairs}))
    with rt.engine.begin() as conn:
        audit.record(
            conn,
            operator=operator,
            action="failures.requeued",
            subject=f"alert {alert_id}" if alert_id is not None else None,
            details=asdict(report) | {"channel": channel},
        )
    return report


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


def delivery_counts(engine: Engine, *, alert_ids: Sequence[int] | None = None) -> dict:
    """{channel: {state: count}} over every delivery (or those of some alerts)."""
    statement = select(Delivery.channel, Delivery.state, func.count()).group_by(
        Delivery.channel, Delivery.state
    )
    if alert_ids is not None:
        statement = statement.add_columns(Delivery.alert_id).group_by(Delivery.alert_id)
        statement = statement.where(Delivery.alert_id.in_(alert_ids))
    out: dict = {}
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
        .where(Delivery.state == DeliveryState.QUEUED, Alert.status == AlertStatus.SENDING)
        .group_by(Delivery.channel)
    )
    now = utcnow()
    with engine.connect() as conn:
        return {
            c: (int(n), max(0.0, (now - _aware(oldest)).total_seconds()))
            for c, n, oldest in conn.execute(statement)
        }


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
) -> list[dict]:
    """Alerts still sending, and those finished within `within` (newest first), each with
    {channel: {"done", "total", "failed"}} where done counts every final state."""
    recent = utcnow() - within
    statement = (
        select(Alert.id, Alert.template, Alert.status, Alert.urgent, Alert.operator)
        .add_columns(Alert.created_at)
        .where(or_(Alert.status == AlertStatus.SENDING, Alert.finished_at >= recent))
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        alerts = [dict(row) for row in conn.execute(statement).mappings()]
    counts = delivery_counts(engine, alert_ids=[a["id"] for a in alerts]) if alerts else {}
    for a in alerts:
        a["created_at"] = _aware(a["created_at"]).isoformat()
        a["channels"] = {}
        for channel, states in sorted(counts.get(a["id"], {}).items()):
            total = sum(states.values())
            open_ = states.get(DeliveryState.QUEUED, 0) + states.get(DeliveryState.SENDING, 0)
            failed = sum(states.get(s, 0) for s in PROBLEM_STATES)
            a["channels"][channel] = {"done": total - open_, "total": total, "failed": failed}
    return alerts


def snapshot(rt: Runtime, monitor: QueueMonitor | None, *, minutes: int = 60) -> dict:
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


def _aware(when: datetime) -> datetime:
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    return when if when.tzinfo else when.replace(tzinfo=UTC)
