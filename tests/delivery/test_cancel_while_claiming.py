"""Cancelling an alert while workers are claiming its deliveries (PostgreSQL, where claims hold
row locks): the cancel does not wait for a claim in flight, so it cannot deadlock with one that
holds several rows; what was being claimed goes out, everything else ends `cancelled`."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine
from broadcast.store.tables import Delivery
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


@pytest.fixture
def pg_runtime(postgres_url: str) -> Iterator[Runtime]:
    url = clean_postgres(postgres_url)
    engine = default_force(create_db_engine(url))
    yield Runtime(Settings(database_url=url, voice_rate=None, _env_file=None), engine=engine)
    engine.dispose()


def test_cancel_skips_rows_a_worker_is_claiming_instead_of_waiting(pg_runtime: Runtime) -> None:
    rt = pg_runtime
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(20)])
    alert = alerts.create_alert(
        rt, "community-alert", VARS, ("sms",), Targeting(everyone=True), operator="pc"
    )
    approval.submit(rt, RecordingDispatcher(), alert, operator="pc")
    assert alert.id is not None
    with rt.engine.connect() as conn:
        first, second = conn.execute(
            select(Delivery.id).where(Delivery.alert_id == alert.id).order_by(Delivery.id).limit(2)
        ).scalars()
    # A worker's claim of two rows, in its open transaction
    claim = rt.engine.connect()
    claim.begin()
    claim.execute(
        text("UPDATE delivery SET state = 'sending' WHERE id IN (:a, :b)"),
        {"a": first, "b": second},
    )
    done: list[int] = []
    cancel = threading.Thread(
        target=lambda: done.append(approval.cancel(rt, alert.id, operator="s"))
    )
    cancel.start()
    cancel.join(timeout=10)
    still_waiting = cancel.is_alive()
    claim.commit()
    claim.close()
    cancel.join()
    # The cancel finished without waiting for the claim, and ended the 18 others
    assert not still_waiting and done == [18]
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.state, func.count())
            .where(Delivery.alert_id == alert.id)
            .group_by(Delivery.state)
        )
        states = {state: n for state, n in rows}
    assert states == {"cancelled": 18, "sending": 2}
