"""Chunk ranges: dense ids (a fresh plan) by arithmetic, sparse ones (after some were sent) by
the window query; both cover every queued delivery once with at most `size` per range."""

from __future__ import annotations

from sqlalchemy import select, update

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting, chunks
from broadcast.store.tables import Delivery, DeliveryState
from tests.delivery.factories import Person, add_people


def queued_per_range(rt, alert_id: int, size: int) -> list[int]:  # type: ignore[no-untyped-def]
    with rt.engine.connect() as conn:
        ranges = list(chunks(conn, alert_id, "sms", size))
        queued = set(
            conn.execute(
                select(Delivery.id).where(
                    Delivery.alert_id == alert_id, Delivery.state == DeliveryState.QUEUED
                )
            ).scalars()
        )
    counts = [sum(1 for i in queued if c.after_id < i <= c.upto_id) for c in ranges]
    assert sum(counts) == len(queued)  # every queued delivery in exactly one range
    assert all(a.upto_id <= b.after_id for a, b in zip(ranges, ranges[1:], strict=False))
    return counts


def test_dense_and_sparse_ranges(runtime) -> None:  # type: ignore[no-untyped-def]
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(25)])
    alert = alerts.create_alert(
        runtime,
        "community-alert",
        {"headline": "H", "message": "M"},
        ("sms",),
        Targeting(everyone=True),
        operator="t",
    )
    approval.submit(runtime, RecordingDispatcher(), alert, operator=alert.operator)
    # Given a fresh plan (consecutive ids): ranges of 10, 10 and 5
    assert queued_per_range(runtime, alert.id, 10) == [10, 10, 5]
    # When every third delivery has gone out (ids no longer dense)
    with runtime.engine.begin() as conn:
        ids = conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars().all()
        conn.execute(
            update(Delivery).where(Delivery.id.in_(ids[::3])).values(state=DeliveryState.SENT)
        )
    # Then the 16 left still come in full ranges of 10 and the rest
    assert queued_per_range(runtime, alert.id, 10) == [10, 6]
    # And nothing queued: no ranges at all
    with runtime.engine.begin() as conn:
        conn.execute(update(Delivery).values(state=DeliveryState.SENT))
    assert queued_per_range(runtime, alert.id, 10) == []
