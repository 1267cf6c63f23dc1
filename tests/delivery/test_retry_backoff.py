"""One backoff rule: the wait before a retry and the "would it land after expiry?" decision use
the same capped ceiling (broadcast.delivery.outcomes)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.channels import TransientChannelError
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.outcomes import RETRY_CAP, backoff, retry_ceiling
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def test_the_wait_doubles_up_to_the_cap_and_jitters_below_it() -> None:
    assert [retry_ceiling(n, 10.0) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]
    assert retry_ceiling(30, 10.0) == RETRY_CAP == 600.0
    for attempts in (1, 5, 30):
        ceiling = retry_ceiling(attempts, 10.0)
        assert all(ceiling / 2 <= backoff(attempts, 10.0) <= ceiling for _ in range(50))


def test_a_retry_the_cap_brings_before_expiry_is_made(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given a retry base longer than the cap, and an alert expiring in 15 minutes
    settings = runtime.settings.model_copy(update={"delivery_retry_base": 1000.0})
    rt = Runtime(settings, engine=runtime.engine, channels=channels)
    add_people(rt.engine, [Person(channels=("sms",))])
    channels["sms"].failures["+447700900000"] = lambda: TransientChannelError("503", code="20503")
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARS,
        ("sms",),
        Targeting(everyone=True),
        operator="pc-test",
        expires=timedelta(minutes=15),
    )
    dispatcher = RecordingDispatcher()
    approval.submit(rt, dispatcher, alert, operator=alert.operator)
    # When the first try fails for a transient reason
    (chunk,) = dispatcher.take()
    outcome = deliver_chunk(rt, chunk)
    # Then the retry comes within the 10-minute cap, before expiry, so the delivery waits for it
    # (the uncapped 1000 s would have given up at once)
    with rt.engine.connect() as conn:
        state = conn.execute(select(Delivery.state)).scalar_one()
    assert state == "queued"
    assert outcome.retry_after is not None and RETRY_CAP / 2 <= outcome.retry_after <= RETRY_CAP
