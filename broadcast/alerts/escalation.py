"""Escalation across channels: `--escalate sms>voice --escalate-after 15m`.

For each registrant whose delivery on the first channel ended `failed` or `undeliverable`, or was
not confirmed `delivered` within the window after it was sent (`sent`, `in-doubt`), the alert
goes out on the next channel if they hold an active subscription to it. Each step is a child
alert (kind `escalation`) with one delivery per (registrant, channel): the unique constraint
and a NOT EXISTS make "at most once per step" hold whoever runs the check, and a chain
(`sms>voice>email`) is the child carrying the rest of the chain.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, insert, or_, select
from sqlalchemy.orm import aliased

from broadcast.alerts import lifecycle
from broadcast.alerts.compose import parse_duration
from broadcast.delivery import planning
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.planning import insert_queued
from broadcast.delivery.records import load_alert
from broadcast.delivery.targeting import CALL, fared, from_deliveries
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, AlertLifecycle, Delivery, utcnow
from broadcast.vocabulary import (
    CHANNELS,
    ENDED_BADLY_STATES,
    NOT_CONFIRMED_STATES,
    AlertState,
)

ENGINE = "escalation"


def parse_chain(text: str, channels: tuple[str, ...]) -> str:
    """'sms>voice' -> 'sms>voice', checked: known channels, no repeats, the first one sent."""
    steps = [s.strip().lower() for s in text.split(">") if s.strip()]
    if len(steps) < 2 or len(set(steps)) != len(steps):
        raise InvalidInput(f"--escalate {text!r}: give two or more channels, e.g. sms>voice")
    unknown = [s for s in steps if s not in CHANNELS]
    if unknown:
        raise InvalidInput(f"--escalate: unknown channel {', '.join(unknown)}")
    if steps[0] not in channels:
        raise InvalidInput(f"--escalate starts with {steps[0]}, which the alert is not sent on")
    return ">".join(steps)


def window_seconds(text: str | None, default: str) -> int:
    return int(parse_duration(text or default).total_seconds())


def escalate_due(rt: Runtime, dispatcher: Dispatcher) -> dict[int, int]:
    """Run every escalation step that has candidates; new deliveries per escalation alert."""
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(AlertLifecycle.alert_id)
            .join(Alert, Alert.id == AlertLifecycle.alert_id)
            .where(
                AlertLifecycle.escalate.is_not(None),
                Alert.status.in_([AlertState.SENDING, AlertState.COMPLETED]),
                Alert.expires_at > rt.clock.now(),
            )
        ).scalars()
        ids = list(rows)
    out = {}
    for alert_id in ids:
        child, added = escalate_alert(rt, dispatcher, alert_id)
        if added:
            out[child] = added
    return out


def escalate_alert(rt: Runtime, dispatcher: Dispatcher, alert_id: int) -> tuple[int, int]:
    """One step for one alert: (the escalation alert's id or 0, deliveries added)."""
    info = lifecycle.info(rt.engine, alert_id)
    alert = load_alert(rt.engine, alert_id)
    if alert is None or not info.escalate:
        return 0, 0
    chain = info.escalate.split(">")
    source, target = chain[0], chain[1]
    cutoff = rt.clock.now() - timedelta(seconds=info.escalate_after or 0)
    existing = lifecycle.children(rt.engine, alert_id, kind="escalation")
    child = existing[0].alert_id if existing else 0
    with rt.engine.begin() as conn:
        due = _candidates(alert_id, source, target, cutoff, child)
        if not conn.execute(select(exists(due))).scalar():
            return child, 0
        if not child:
            rest = ">".join(chain[1:]) if len(chain) > 2 else None
            child = _child(conn, alert, info, target, rest)
            due = _candidates(alert_id, source, target, cutoff, child)
        added = insert_queued(conn, child, due, channel=target)
        if added:
            reason = f"{added} not reached by {source}"
            lifecycle.transition(conn, child, AlertState.SENDING, operator=ENGINE, reason=reason)
    if added:
        child_alert = load_alert(rt.engine, child)
        assert child_alert is not None
        size = rt.settings.delivery_chunk_size
        with rt.engine.connect() as conn:
            planning.enqueue_alert(conn, dispatcher, child_alert, size=size)
    return child, added


def _child(conn, alert: Alert, info: AlertLifecycle, target: str, rest: str | None) -> int:  # type: ignore[no-untyped-def]
    """The escalation alert: the same message, on the next channel, for the same time."""
    values = alert.model_dump(exclude={"id", "created_at", "finished_at"})
    values |= {"channels": target, "areas": "", "topics": "", "everyone": False, "source": None}
    values |= {"status": AlertState.DRAFT, "created_at": utcnow()}
    child = conn.execute(insert(Alert).values(**values)).inserted_primary_key[0]
    lifecycle.attach(
        conn,
        AlertLifecycle(
            alert_id=child,
            kind="escalation",
            parent_id=alert.id,
            escalate=rest,
            escalate_after=info.escalate_after,
            emergency=info.emergency,
            approved_by=info.approved_by,
        ),
        operator=ENGINE,
    )
    return int(child)


def _candidates(
    alert_id: int, source: str, target: str, cutoff: datetime, child: int
) -> Select[Any]:
    """SELECT DISTINCT registrant_id of those due this step, who can be sent on `target` and
    were not yet given it. A household delivery (voice shared with others on the number) fares
    as the call it shared."""
    other = aliased(Delivery)
    state = fared("state")
    late = and_(
        state.in_(NOT_CONFIRMED_STATES),
        func.coalesce(CALL.sent_at, CALL.claimed_at, Delivery.sent_at, Delivery.claimed_at)
        <= cutoff,
    )
    return (
        from_deliveries([Delivery.registrant_id], [alert_id], channel=target)
        .where(
            Delivery.channel == source,
            or_(state.in_(ENDED_BADLY_STATES), late),
            # Reached on that channel already, by the alert itself or by this step.
            ~exists().where(
                other.alert_id.in_([alert_id, child]),
                other.registrant_id == Delivery.registrant_id,
                other.channel == target,
            ),
        )
        .distinct()
    )


def describe_window(seconds: int | None) -> str:
    minutes = (seconds or 0) // 60
    if minutes < 60:
        return f"{minutes} min" if minutes else f"{seconds or 0} s"
    return f"{minutes // 60} h {minutes % 60} min" if minutes % 60 else f"{minutes // 60} h"
