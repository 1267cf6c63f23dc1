"""Code inside an open transaction reads the alert on that transaction's connection, so it
never waits for a second connection from a pool whose connections are all held."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.alerts.scheduling import requeue_held
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.delivery.recovery import give_up_chunk
from broadcast.ops.failures import requeue_failures
from broadcast.runtime import Runtime
from broadcast.store import tenancy
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


@pytest.fixture
def one_connection(runtime: Runtime, channels) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    """The same database behind a pool of exactly one connection that is never waited for
    long: a second connection taken while the first is held fails at once."""
    engine: Engine = create_engine(runtime.engine.url, pool_size=1, max_overflow=0, pool_timeout=1)
    tenancy.install(engine)  # as create_db_engine does: force scoping on every statement
    rt = Runtime(runtime.settings, engine=engine, channels=channels)
    yield rt
    engine.dispose()


def test_giving_up_and_requeueing_hold_one_connection(one_connection: Runtime) -> None:
    # Given: an alert whose chunk is queued
    rt = one_connection
    add_people(rt.engine, [Person(channels=("sms",))] * 3)
    dispatcher = RecordingDispatcher()
    alert = alerts.create_alert(
        rt, "community-alert", VARS, ("sms",), Targeting(everyone=True), operator="pc-test"
    )
    approval.submit(rt, dispatcher, alert, operator=alert.operator)
    (chunk,) = dispatcher.take()

    # When: its worker gives up, the failures are queued again, and held work is requeued
    give_up_chunk(rt, chunk, "the worker kept failing")
    with rt.engine.connect() as conn:
        failed = list(conn.execute(select(Delivery.state)).scalars())
    report = requeue_failures(rt, dispatcher, operator="pc-test")
    requeued = requeue_held(rt, dispatcher)

    # Then: each finished on the one connection (a second would have timed out)
    assert failed == ["failed"] * 3
    assert report.deliveries == 3
    assert requeued >= 1
