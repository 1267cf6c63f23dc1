"""A running web app for the ops tests, with deliveries in several states and queued messages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import select, update

from broadcast.settings import Settings
from broadcast.store.tables import Delivery, utcnow
from broadcast.web import create_app
from tests.ops.conftest import Ops
from tests.support.servers import free_port
from tests.web.conftest import serve
from workers.embedded import Backend

TOKEN = "ops-token-for-tests"


def seed(ops: Ops) -> int:
    """An alert of 12 SMS: 6 sent over the last minutes, 2 failed, 1 undeliverable, 3 queued,
    with 2 chunk messages on the sms queue; its id."""
    alert = ops.planned_alert(12)
    chunks = ops.chunks(alert)  # 12 queued, 10 a chunk: 2 messages
    with ops.rt.engine.begin() as conn:
        ids = conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars().all()
        now = utcnow()
        for n, delivery_id in enumerate(ids[:6]):
            when = now - timedelta(minutes=n % 3)
            conn.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(state="sent", sent_at=when, finished_at=when, claimed_at=when)
            )
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids[6:8]))
            .values(
                state="failed",
                error_code="30003",
                error_text="gave up after 3 attempts: unreachable handset",
                finished_at=now,
            )
        )
        conn.execute(
            update(Delivery)
            .where(Delivery.id == ids[8])
            .values(state="undeliverable", error_code="21211", error_text="invalid number")
        )
    Backend(ops.rt).dispatcher.enqueue(chunks)
    return alert.id


@contextmanager
def web(ops: Ops, **overrides: object) -> Iterator[str]:
    values = {k.removeprefix("BROADCAST_").lower(): v for k, v in ops.env.items()}
    settings = Settings(_env_file=None, **(values | {"ops_token": TOKEN} | overrides))
    with serve(create_app(settings), free_port()) as url:
        yield url
