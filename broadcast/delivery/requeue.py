"""Queue failed deliveries again: `alert retry-failed` and `failures requeue` both come here.

Transient failures that ran out of tries (`failed`, but not a template that cannot render) go
back to `queued` with fresh attempts, the alert moves back to `sending` (logged, through the
store's one writer of `alert.status`), its expiry is pushed out, and the chunks are enqueued.
docs/delivery.md
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import ColumnElement, case, update

from broadcast.delivery import planning
from broadcast.delivery.dispatch import Dispatcher
from broadcast.runtime import Runtime
from broadcast.store.alert_status import set_status
from broadcast.store.tables import Alert, Delivery, utcnow
from broadcast.vocabulary import AlertState, DeliveryState

REQUEUED_IN_DOUBT = "sent again by an operator after the send was in doubt"


def retryable(*, include_in_doubt: bool = False) -> ColumnElement[bool]:
    """Deliveries a requeue sends again: `failed` (not `render`); with `include_in_doubt`, also
    in-doubt ones no longer being settled automatically (a copy may reach someone twice)."""
    failed = (Delivery.state == DeliveryState.FAILED) & Delivery.error_code.is_distinct_from(
        "render"
    )
    held = (Delivery.state == DeliveryState.IN_DOUBT) & Delivery.settle_after.is_(None)
    return failed | held if include_in_doubt else failed


@dataclass(frozen=True)
class Requeued:
    deliveries: int  # queued again
    messages: int  # chunk messages enqueued


def requeue_alert(
    rt: Runtime,
    dispatcher: Dispatcher,
    alert: Alert,
    *,
    operator: str,
    extend: timedelta,
    channels: tuple[str, ...] | None = None,
    include_in_doubt: bool = False,
    reason: str | None = None,
) -> Requeued:
    """Queue the alert's retryable deliveries (on `channels`, default all) again and enqueue
    them. The alert gets at least `extend` more time from now; `reason` (default "N failed
    deliveries queued again") goes in its transition log. The caller refuses cancelled alerts."""
    assert alert.id is not None
    where = [Delivery.alert_id == alert.id, retryable(include_in_doubt=include_in_doubt)]
    if channels is not None:
        where.append(Delivery.channel.in_(channels))
    new_expiry = max(alert.expires_at, utcnow() + extend)
    with rt.engine.begin() as conn:
        moved = conn.execute(
            update(Delivery)
            .where(*where)
            .values(
                state=DeliveryState.QUEUED,
                attempts=0,
                finished_at=None,
                recovered=case(
                    (Delivery.state == DeliveryState.IN_DOUBT, REQUEUED_IN_DOUBT),
                    else_=Delivery.recovered,
                ),
            )
        ).rowcount
        count = int(moved or 0)
        if not count:
            return Requeued(0, 0)
        # A finished alert is sending again; one still sending stays so. `done` is the only
        # state with deliveries that the machine lets go back to sending (lifecycle.ALLOWED).
        why = reason or f"{count} failed deliveries queued again"
        set_status(
            conn,
            alert.id,
            AlertState.SENDING,
            expect=AlertState.COMPLETED,
            operator=operator,
            reason=why,
        )
        conn.execute(update(Alert).where(Alert.id == alert.id).values(expires_at=new_expiry))
    alert.expires_at = new_expiry
    with rt.engine.connect() as conn:
        messages = planning.enqueue_alert(
            conn, dispatcher, alert, size=rt.settings.delivery_chunk_size, channels=channels
        )
    return Requeued(count, messages)
