"""The figures' SQL on PostgreSQL too (the other ops tests use SQLite): per-minute buckets,
waiting work, live alerts and failure groups."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from broadcast.alerts import compose as alerts
from broadcast.delivery import planning
from broadcast.delivery.planning import Targeting
from broadcast.ops import failures
from broadcast.ops import figures as monitoring_figures
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.tables import Delivery, utcnow
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people
from tests.ops.conftest import VARS


def test_figures_on_postgresql(postgres_url: str) -> None:
    rt = Runtime(Settings(_env_file=None, database_url=clean_postgres(postgres_url)))
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(8)])
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARS,
        ("sms",),
        Targeting(everyone=True),
        operator="t",
        status="sending",  # planned by hand below, as a released alert
    )
    with rt.engine.begin() as conn:
        planning.plan_deliveries(conn, alert)
        ids = conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars().all()
        now = utcnow()
        # 3 sent this minute, 2 sent 5 minutes ago (2 units each), 1 failed, 2 still queued
        conn.execute(
            update(Delivery).where(Delivery.id.in_(ids[:3])).values(state="sent", sent_at=now)
        )
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[3:5]))
            .values(state="sent", units=2, sent_at=now - timedelta(minutes=5))
        )
        conn.execute(
            update(Delivery)
            .where(Delivery.id == ids[5])
            .values(state="failed", error_text="gave up", finished_at=now)
        )
    history = monitoring_figures.sent_per_minute(rt.engine, minutes=60)["sms"]
    # (two slots each, in case the minute turns between the update and the read)
    assert sum(history[-2:]) == 3 and sum(history[-7:-5]) == 4 and sum(history) == 7
    assert monitoring_figures.waiting(rt.engine)["sms"][0] == 2
    live = monitoring_figures.live_alerts(rt.engine)
    assert live[0]["channels"]["sms"] == {
        "done": 6,
        "total": 8,
        "failed": 1,
        "reached": 5,
        "unreached": {"failed": 1},
    }
    groups = failures.failure_groups(rt.engine, channel="sms")
    assert [(g.state, g.count, g.requeueable) for g in groups] == [("failed", 1, True)]
    assert monitoring_figures.delivery_counts(rt.engine)["sms"] == {
        "sent": 5,
        "failed": 1,
        "queued": 2,
    }
    rt.engine.dispose()
