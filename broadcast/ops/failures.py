"""What operators fix: failures by reason, requeue, and dead letters settled or purged.

Requeueing one alert is `broadcast.delivery.requeue` (shared with `alert retry-failed`); the
broker's side (dead letters) comes through `broadcast.ops.queues.QueueMonitor`.
docs/operations.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from broadcast.alerts.compose import parse_duration
from broadcast.delivery import requeue
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.records import load_alert
from broadcast.delivery.recovery import give_up_chunk
from broadcast.ops import audit
from broadcast.ops.queues import DeadLetter, QueueMonitor
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery
from broadcast.vocabulary import PROBLEM_STATES, AlertState, DeliveryState


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
    include_in_doubt: bool = False,
) -> RequeueReport:
    """Put transient failures back: dead letters are settled first (their deliveries become
    `failed`), then every `failed` delivery (not `render`) of a not-cancelled alert is queued
    again with fresh attempts and sent through `dispatcher`; with `include_in_doubt`, in-doubt
    deliveries no longer being settled automatically too (a copy may reach someone twice: the
    operator checked). Audited as failures.requeued."""
    report = RequeueReport()
    if monitor is not None:
        letters = matching_letters(monitor.dead_letters(), alert_id=alert_id, channel=channel)
        report.dead_letters = settle_dead_letters(rt, monitor, letters)
    retryable = requeue.retryable(include_in_doubt=include_in_doubt)
    find = _filtered(
        select(Delivery.alert_id, Delivery.channel)
        .join(Alert, Alert.id == Delivery.alert_id)
        .where(retryable, Alert.status != AlertState.CANCELLED)
        .distinct(),
        alert_id,
        channel,
    )
    with rt.engine.connect() as conn:
        pairs = sorted({(int(a), str(c)) for a, c in conn.execute(find)})
    extend = parse_duration(rt.settings.alert_default_expiry)
    for one_alert in sorted({a for a, _ in pairs}):
        alert = load_alert(rt.engine, one_alert)
        assert alert is not None
        done = requeue.requeue_alert(
            rt,
            dispatcher,
            alert,
            operator=operator,
            extend=extend,
            channels=tuple(sorted(c for a, c in pairs if a == one_alert)),
            include_in_doubt=include_in_doubt,
            reason="failures requeued",
        )
        report.deliveries += done.deliveries
        report.messages += done.messages
    report.alerts = tuple(sorted({a for a, _ in pairs}))
    with rt.engine.begin() as conn:
        audit.record(
            conn,
            operator=operator,
            action="failures.requeued",
            subject=f"alert {alert_id}" if alert_id is not None else None,
            details=asdict(report) | {"channel": channel, "in_doubt": include_in_doubt},
        )
    return report
