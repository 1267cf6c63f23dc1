"""Scheduled alerts: `--at` parsing (local time, DST-correct) and the scheduler's tick.

A scheduled alert is only a row (`status='scheduled'`, `alert_lifecycle.scheduled_at`), so it
survives a restart of every process; whichever scheduler runs next releases it. The tick also
ends unreleased alerts past their expiry, escalates across channels and, without Redis, queues
again the work held for quiet hours (docs/lifecycle.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select

from broadcast.alerts import escalation, lifecycle
from broadcast.delivery import planning
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.records import load_alert
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, AlertLifecycle, Delivery
from broadcast.vocabulary import AlertState, DeliveryState

logger = logging.getLogger(__name__)
SCHEDULER = "scheduler"


def parse_at(text: str, *, zone: ZoneInfo, now: datetime) -> datetime:
    """'2026-11-23 07:30' (local time in `zone`) or ISO 8601 with an offset -> aware datetime.

    A local time that does not exist (clocks going forward) is refused; one that happens twice
    (clocks going back) means the first."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"--at {text!r}: use 'YYYY-MM-DD HH:MM' (local time) or ISO 8601 with an offset"
        ) from None
    if when.tzinfo is None:
        local = when.replace(tzinfo=zone)
        if local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != when:
            raise InvalidInput(
                f"--at {text!r} does not exist in {zone.key} (the clocks go forward then)"
            )
        when = local
    if when <= now:
        shown = now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
        raise InvalidInput(f"--at {text!r} is in the past (it is now {shown} {zone.key})")
    return when


@dataclass
class TickReport:
    released: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    escalated: dict[int, int] = field(default_factory=dict)  # escalation alert -> new deliveries
    requeued: int = 0

    def __str__(self) -> str:
        return (
            f"released {self.released or 'none'}, expired {self.expired or 'none'}, "
            f"escalated {sum(self.escalated.values())} deliveries, requeued {self.requeued} chunks"
        )

    @property
    def busy(self) -> bool:
        return bool(self.released or self.escalated or self.requeued)


def release_due(rt: Runtime, dispatcher: Dispatcher) -> list[int]:
    """Release every scheduled alert whose time has come; their ids."""
    now = rt.clock.now()
    with rt.engine.connect() as conn:
        due = list(
            conn.execute(
                select(Alert.id)
                .join(AlertLifecycle, AlertLifecycle.alert_id == Alert.id)
                .where(Alert.status == AlertState.SCHEDULED, AlertLifecycle.scheduled_at <= now)
                .order_by(AlertLifecycle.scheduled_at)
            ).scalars()
        )
    released = []
    for alert_id in due:
        if lifecycle.release(rt, dispatcher, alert_id, operator=SCHEDULER) != AlertState.SCHEDULED:
            released.append(alert_id)
    return released


def expire_unreleased(rt: Runtime) -> list[int]:
    """Alerts still awaiting approval (or their time) after their expiry end `expired`."""
    now = rt.clock.now()
    with rt.engine.begin() as conn:
        ids = list(
            conn.execute(
                select(Alert.id).where(
                    Alert.status.in_([AlertState.PENDING_APPROVAL, AlertState.SCHEDULED]),
                    Alert.expires_at <= now,
                )
            ).scalars()
        )
        return [
            i
            for i in ids
            if lifecycle.transition(
                conn, i, AlertState.EXPIRED, operator=SCHEDULER, reason="expired"
            )
        ]


def requeue_held(rt: Runtime, dispatcher: Dispatcher) -> int:
    """Without Redis no delayed message waits for quiet hours to end: queue again the queued
    work of sending alerts (chunks still in quiet hours are simply held again)."""
    with rt.engine.connect() as conn:
        ids = list(
            conn.execute(
                select(Alert.id).where(
                    Alert.status == AlertState.SENDING,
                    exists().where(
                        Delivery.alert_id == Alert.id, Delivery.state == DeliveryState.QUEUED
                    ),
                )
            ).scalars()
        )
        sent = 0
        for alert_id in ids:
            alert = load_alert(conn, alert_id)
            if alert is not None:
                size = rt.settings.delivery_chunk_size
                sent += planning.enqueue_alert(conn, dispatcher, alert, size=size)
    return sent


def tick(rt: Runtime, dispatcher: Dispatcher, *, embedded: bool = False) -> TickReport:
    """One pass of the scheduler: release, expire, escalate, and (embedded) requeue."""
    report = TickReport()
    report.released = release_due(rt, dispatcher)
    report.expired = expire_unreleased(rt)
    report.escalated = escalation.escalate_due(rt, dispatcher)
    if embedded:
        report.requeued = requeue_held(rt, dispatcher)
    return report


def scheduled_at(rt: Runtime, alert_id: int) -> datetime | None:
    return lifecycle.info(rt.engine, alert_id).scheduled_at
