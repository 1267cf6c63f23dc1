"""What operators do to an alert before and while it goes out: submit it (two-person rule,
schedule, or at once), approve or reject it, cancel it. Each step is a `lifecycle.transition`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update

from broadcast.alerts import compose as alerts
from broadcast.alerts import lifecycle
from broadcast.delivery.dispatch import Dispatcher
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, AlertLifecycle
from broadcast.vocabulary import AlertState


def submit(
    rt: Runtime,
    dispatcher: Dispatcher,
    alert: Alert,
    *,
    operator: str,
    emergency: bool = False,
    scheduled_at: datetime | None = None,
    escalate: str | None = None,
    escalate_after: int | None = None,
    needs_approval: bool = False,
) -> str:
    """A new (draft) alert goes to approval, to the schedule, or out now; its new state.

    With BROADCAST_REQUIRE_APPROVAL (or `needs_approval`: another force's part of a regional
    alert) a second operator must approve, unless `emergency`. Follow-ups (which already have
    their lifecycle row) pass only the first arguments."""
    assert alert.id is not None
    if not lifecycle.infos(rt.engine, [alert.id]):
        with rt.engine.begin() as conn:
            lifecycle.attach(
                conn,
                AlertLifecycle(
                    alert_id=alert.id,
                    scheduled_at=scheduled_at,
                    emergency=emergency,
                    escalate=escalate,
                    escalate_after=escalate_after,
                ),
                operator=operator,
            )
    if (rt.settings.require_approval or needs_approval) and not emergency:
        with rt.engine.begin() as conn:
            lifecycle.transition(conn, alert.id, AlertState.PENDING_APPROVAL, operator=operator)
        return AlertState.PENDING_APPROVAL
    return _schedule_or_release(rt, dispatcher, alert.id, operator=operator)


def _schedule_or_release(
    rt: Runtime, dispatcher: Dispatcher, alert_id: int, *, operator: str
) -> str:
    when = lifecycle.info(rt.engine, alert_id).scheduled_at
    if when is not None and when > rt.clock.now():
        with rt.engine.begin() as conn:
            lifecycle.transition(conn, alert_id, AlertState.SCHEDULED, operator=operator)
        return AlertState.SCHEDULED
    return lifecycle.release(rt, dispatcher, alert_id, operator=operator)


def approve(rt: Runtime, dispatcher: Dispatcher, alert_id: int, *, operator: str) -> str:
    """A second operator releases a pending alert (to its schedule, or out now)."""
    alert = alerts.get_alert(rt, alert_id)
    lifecycle.require(alert, AlertState.PENDING_APPROVAL, doing="approve")
    if operator.strip().lower() == alert.operator.strip().lower():
        raise InvalidInput(
            f"{operator} created alert {alert_id} and cannot approve it: another operator must "
            "(two-person rule). Use --emergency when sending to go out without approval."
        )
    with rt.engine.begin() as conn:
        conn.execute(
            update(AlertLifecycle)
            .where(AlertLifecycle.alert_id == alert_id)
            .values(approved_by=operator)
        )
    state = _schedule_or_release(rt, dispatcher, alert_id, operator=operator)
    if state == AlertState.PENDING_APPROVAL:
        raise InvalidInput(f"alert {alert_id} changed while approving; look at `alert status`")
    return state


def reject(rt: Runtime, alert_id: int, *, operator: str, reason: str) -> None:
    alert = alerts.get_alert(rt, alert_id)
    lifecycle.require(alert, AlertState.PENDING_APPROVAL, doing="reject")
    if not reason.strip():
        raise InvalidInput("say why: --reason '...'")
    with rt.engine.begin() as conn:
        if not lifecycle.transition(
            conn, alert_id, AlertState.REJECTED, operator=operator, reason=reason
        ):
            raise InvalidInput(f"alert {alert_id} changed meanwhile; look at `alert status`")
        conn.execute(
            update(AlertLifecycle).where(AlertLifecycle.alert_id == alert_id).values(reason=reason)
        )


def cancel(rt: Runtime, alert_id: int, *, operator: str, reason: str | None = None) -> int:
    """Stop the alert, whatever stage it is at; the deliveries that will no longer be sent.
    Cancelling a finished (or already ended) alert changes nothing and returns 0."""
    alert = alerts.get_alert(rt, alert_id)
    if alert.status not in (*lifecycle.UNRELEASED, AlertState.SENDING):
        return 0
    with rt.engine.begin() as conn:
        moved = lifecycle.transition(
            conn, alert_id, AlertState.CANCELLED, operator=operator, reason=reason
        )
    if not moved and alert.status in lifecycle.UNRELEASED:
        return 0
    # The engine's cancel ends every queued delivery (workers claim only queued rows).
    return alerts.cancel_alert(rt, alert_id, operator=operator)
