"""A release tells the time by the runtime's clock, the clock the scheduler used to find the
alert due: the expiry check and `released_at` never mix it with the system time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broadcast.alerts import approval, lifecycle, scheduling
from broadcast.alerts import compose as alerts
from broadcast.clock import FixedClock, aware
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from broadcast.vocabulary import AlertState
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import default_force

VARIABLES = {"headline": "Road closed", "message": "Avoid the high street."}


def build(tmp_path, clock: FixedClock) -> Runtime:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'r.db'}",
        alert_default_expiry="6h",
        _env_file=None,
    )
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    engine = default_force(engine)
    sms = RecordingChannel(name="sms")
    return Runtime(settings, engine=engine, channels={"sms": sms}, clock=clock)


def submit(rt: Runtime) -> tuple[int, str]:
    add_people(rt.engine, [Person(channels=("sms",))])
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARIABLES,
        ("sms",),
        Targeting(everyone=True),
        operator="pc-1",
        status="draft",
    )
    assert alert.id is not None
    return alert.id, approval.submit(rt, RecordingDispatcher(), alert, operator="pc-1")


def test_a_release_stamps_the_runtimes_time(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given a runtime whose clock is an hour ahead of the system's (inside the 6 h expiry)
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1))
    rt = build(tmp_path, clock)
    # When an alert is released
    alert_id, state = submit(rt)
    # Then it goes out, released at the clock's time
    assert state == AlertState.SENDING
    released_at = lifecycle.info(rt.engine, alert_id).released_at
    assert released_at is not None and aware(released_at) == clock.now()


def test_the_scheduler_releasing_past_expiry_by_its_clock_expires_the_alert(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given an alert scheduled in an hour, so expiring 6 h after that
    now = datetime.now(UTC)
    clock = FixedClock(now)
    rt = build(tmp_path, clock)
    add_people(rt.engine, [Person(channels=("sms",))])
    starts_at = now + timedelta(hours=1)
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARIABLES,
        ("sms",),
        Targeting(everyone=True),
        operator="pc-1",
        status="draft",
        starts_at=starts_at,
    )
    assert alert.id is not None
    dispatcher = RecordingDispatcher()
    state = approval.submit(rt, dispatcher, alert, operator="pc-1", scheduled_at=starts_at)
    assert state == AlertState.SCHEDULED
    # When the scheduler's clock reads 8 h later (past the expiry) and it releases what is due
    clock.advance(hours=8)
    assert scheduling.release_due(rt, dispatcher) == [alert.id]
    # Then the alert expires instead of going out: nothing is queued
    assert alerts.get_alert(rt, alert.id).status == "expired"
    assert dispatcher.take() == []
