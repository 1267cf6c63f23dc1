"""The alert's state machine and its transition log.

    draft -> pending-approval -> scheduled | sending -> completed
                      \\-> rejected        \\-> cancelled | expired

Every change goes through `transition`: the machine's check, then `store.alert_status`'s
compare-and-set on `alert.status` plus a row in `alert_transition` with who and when, in one
transaction, so two operators (or the scheduler and an operator) racing on one alert cannot both
win. The delivery engine's own move (sending -> done) goes through the same store writer.
`completed` is stored as `done` (docs/lifecycle.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select, update

from broadcast.delivery import planning
from broadcast.delivery.deliver import finish_if_done
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.records import load_alert
from broadcast.delivery.targeting import reached
from broadcast.errors import InvalidInput, NotFound
from broadcast.runtime import Runtime
from broadcast.store.alert_status import set_first_status, set_status
from broadcast.store.engine import Bind, connection_for
from broadcast.store.tables import Alert, AlertLifecycle, AlertTransition
from broadcast.vocabulary import AlertState, split_channels

S = AlertState
ALLOWED: dict[str, frozenset[str]] = {
    S.DRAFT: frozenset({S.PENDING_APPROVAL, S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.PENDING_APPROVAL: frozenset({S.SCHEDULED, S.SENDING, S.REJECTED, S.CANCELLED, S.EXPIRED}),
    S.SCHEDULED: frozenset({S.SENDING, S.CANCELLED, S.EXPIRED}),
    S.SENDING: frozenset({S.COMPLETED, S.CANCELLED}),
    # retry-failed and escalation steps add work to a finished alert.
    S.COMPLETED: frozenset({S.SENDING}),
}
UNRELEASED = (S.DRAFT, S.PENDING_APPROVAL, S.SCHEDULED)
FOLLOW_UP_KINDS = ("update", "all-clear", "correction")


@dataclass(frozen=True)
class Step:
    from_state: str | None
    to_state: str
    operator: str
    reason: str | None
    occurred_at: datetime


def transition(
    conn: Connection,
    alert_id: int,
    to: str,
    *,
    operator: str,
    reason: str | None = None,
    expect: Iterable[str] | None = None,
) -> bool:
    """Move the alert to `to` if the machine allows it from its current state (and that state
    is one of `expect`); False if another process moved it first or the move is not allowed."""
    current = conn.execute(select(Alert.status).where(Alert.id == alert_id)).scalar_one_or_none()
    if current is None:
        raise NotFound(f"no alert {alert_id}")
    if to not in ALLOWED.get(current, ()) or (expect is not None and current not in set(expect)):
        return False
    return set_status(conn, alert_id, to, expect=current, operator=operator, reason=reason)


def history(bind: Bind, alert_id: int) -> list[Step]:
    """The alert's transitions, oldest first."""
    with connection_for(bind) as conn:
        rows = conn.execute(
            select(AlertTransition)
            .where(AlertTransition.alert_id == alert_id)
            .order_by(AlertTransition.id)
        ).all()
    return [Step(r.from_state, r.to_state, r.operator, r.reason, r.occurred_at) for r in rows]


def info(bind: Bind, alert_id: int) -> AlertLifecycle:
    """The alert's lifecycle row (a default one for alerts sent before lifecycle existed)."""
    return infos(bind, [alert_id]).get(alert_id) or AlertLifecycle(alert_id=alert_id)


def infos(bind: Bind, alert_ids: Iterable[int]) -> dict[int, AlertLifecycle]:
    ids = list(alert_ids)
    if not ids:
        return {}
    with connection_for(bind) as conn:
        rows = conn.execute(select(AlertLifecycle).where(AlertLifecycle.alert_id.in_(ids)))
        return {r.alert_id: AlertLifecycle(**r._mapping) for r in rows}


def children(bind: Bind, alert_id: int, kind: str | None = None) -> list[AlertLifecycle]:
    statement = select(AlertLifecycle).where(AlertLifecycle.parent_id == alert_id)
    if kind is not None:
        statement = statement.where(AlertLifecycle.kind == kind)
    with connection_for(bind) as conn:
        rows = conn.execute(statement.order_by(AlertLifecycle.alert_id))
        return [AlertLifecycle(**r._mapping) for r in rows]


def attach(conn: Connection, lifecycle: AlertLifecycle, *, operator: str) -> None:
    """Store a new alert's lifecycle row and the draft state's first log line."""
    conn.execute(insert(AlertLifecycle).values(**lifecycle.model_dump()))
    set_first_status(conn, lifecycle.alert_id, S.DRAFT, operator=operator)


def release(rt: Runtime, dispatcher: Dispatcher, alert_id: int, *, operator: str) -> str:
    """Plan and queue the alert now (from draft, pending approval or scheduled); its new state.
    Planning happens in the same transaction as the move to `sending`, so a crash leaves either
    an unreleased alert or a sending one whose queued rows the sweep will find."""
    alert = _alert(rt, alert_id)
    now = rt.clock.now()  # the clock that found the alert due (scheduling.release_due)
    with rt.engine.begin() as conn:
        if now >= alert.expires_at:
            if transition(conn, alert_id, S.EXPIRED, operator=operator, reason="past expiry"):
                return S.EXPIRED
            return _status(conn, alert_id)
        if not transition(conn, alert_id, S.SENDING, operator=operator, expect=UNRELEASED):
            return _status(conn, alert_id)  # someone else released or cancelled it
        conn.execute(
            update(AlertLifecycle)
            .where(AlertLifecycle.alert_id == alert_id)
            .values(released_at=now)
        )
        planned = _plan(conn, alert, info(conn, alert_id))
    with rt.engine.begin() as conn:
        planning.refresh_delivery_statistics(conn, planned)
    with rt.engine.connect() as conn:
        planning.enqueue_alert(conn, dispatcher, alert, size=rt.settings.delivery_chunk_size)
    with rt.engine.begin() as conn:
        finish_if_done(conn, alert)  # nobody to send to
    return _alert(rt, alert_id).status


def _plan(conn: Connection, alert: Alert, lifecycle: AlertLifecycle) -> int:
    if lifecycle.kind in FOLLOW_UP_KINDS and lifecycle.parent_id is not None:
        return plan_followup(conn, alert, lifecycle.parent_id)
    return planning.plan_deliveries(conn, alert)


def family(conn: Connection, alert_id: int) -> list[int]:
    """The alert and its escalation steps (and theirs)."""
    out, frontier = [alert_id], [alert_id]
    while frontier:
        frontier = list(
            conn.execute(
                select(AlertLifecycle.alert_id).where(
                    AlertLifecycle.parent_id.in_(frontier), AlertLifecycle.kind == "escalation"
                )
            ).scalars()
        )
        out += frontier
    return out


def plan_followup(conn: Connection, alert: Alert, parent_id: int) -> int:
    """Insert a follow-up's deliveries (state queued): those the parent or its escalation steps
    may have reached, on its channels; how many."""
    assert alert.id is not None
    channels = split_channels(alert.channels)
    return planning.insert_queued(conn, alert.id, reached(family(conn, parent_id), channels))


def _status(conn: Connection, alert_id: int) -> str:
    """The alert's state as this transaction sees it."""
    status = conn.execute(select(Alert.status).where(Alert.id == alert_id)).scalar_one()
    return str(status)


def _alert(rt: Runtime, alert_id: int) -> Alert:
    alert = load_alert(rt.engine, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


def require(alert: Alert, *states: str, doing: str) -> None:
    if alert.status not in states:
        raise InvalidInput(f"alert {alert.id} is {alert.status}; cannot {doing} it")
