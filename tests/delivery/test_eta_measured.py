"""The ETA printed before sending against the measured finish of a real in-process delivery.

The embedded backend runs the real actors (stub broker, in-process Dramatiq worker, 8 threads)
against the outbox channel at 20 emails per WINDOW seconds; the limiter adds its guard (2.5%, so
GUARDED-second windows). Every figure below is in windows: the windows were 5 s and are now 4 s,
for a faster suite, with every bound scaled with them (the same ratios are asserted).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force
from workers.embedded import Backend

EMAIL = ("email",)
SW1A = Targeting(areas=("SW1A",))
VARS = {"headline": "A test", "message": "Nothing to see."}
WINDOW = 4.0
RATE = f"20/{WINDOW:g}s"
GUARDED = WINDOW * 1.025  # the guard is capped at 2.5% of the window (capacity.rate.guarded)
SLACK = 0.06 * WINDOW  # how far a computed ETA may be off its exact figure (0.3 s of 5 s)


def within(measured: float, eta: float) -> bool:
    """The issue's bar, tightened: within 10% of the ETA, or 30% of a window for short runs
    (1.5 s of 5 s windows; measured runs are 0.05-0.4 s late)."""
    print(f"measured {measured:.2f} s, ETA {eta:.2f} s")  # shown with pytest -s
    return abs(measured - eta) <= max(0.1 * eta, 0.3 * WINDOW)


@pytest.fixture
def rt(database_url: str, tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=database_url,
        email_rate=RATE,
        voice_rate=None,
        delivery_capacity_wait=WINDOW,  # the default 5 s was one window; keep the ratio
        outbox_dir=tmp_path / "outbox",
        quiet_hours="off",
        _env_file=None,
    )
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine = default_force(engine)
    runtime = Runtime(settings, engine=engine)
    yield runtime
    engine.dispose()


def finished(rt: Runtime, alert_id: int) -> datetime:
    with rt.engine.connect() as conn:
        last = conn.execute(
            select(func.max(Delivery.sent_at)).where(Delivery.alert_id == alert_id)
        ).scalar_one()
    return last if last.tzinfo else last.replace(tzinfo=UTC)


def send(
    rt: Runtime, backend: Backend, *, urgent: bool = False, channels: tuple[str, ...] = EMAIL
) -> alerts.Alert:
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARS,
        channels,
        SW1A,
        operator="pc-1",
        urgent=urgent,
    )
    approval.submit(rt, backend.dispatcher, alert, operator=alert.operator)
    return alert


def preview_seconds(rt: Runtime, *, urgent: bool = False, channel: str = "email") -> float:
    forecast = alerts.preview_alert(
        rt, "community-alert", VARS, (channel,), SW1A, urgent=urgent
    ).forecasts[channel]
    return (forecast.finish - datetime.now(UTC)).total_seconds()


def test_an_idle_channel_takes_whole_windows_as_the_eta_says(rt) -> None:  # type: ignore[no-untyped-def]
    # Given 50 people on email at 20 a window and nothing else queued
    add_people(rt.engine, [Person(channels=EMAIL)] * 50)
    backend = Backend(rt)
    # When the ETA is read just before sending, and the alert is sent and worked in-process
    started = datetime.now(UTC)
    eta = preview_seconds(rt)
    alert = send(rt, backend)
    backend.run()
    took = (finished(rt, alert.id or 0) - started).total_seconds()
    # Then 20 went at once, 20 a guarded window later, the last 10 two windows later (2.05
    # windows), not the average-rate 1.5 windows
    assert eta == pytest.approx(2 * GUARDED, abs=SLACK)
    assert within(took, eta), (took, eta)


def test_units_left_in_the_window_by_an_earlier_alert_free_when_it_says(rt) -> None:  # type: ignore[no-untyped-def]
    # Given an earlier alert of 30 that just finished: its last 10 units are still in the window
    # (20 went at once, 10 a window later; as with 50 in three windows, one window shorter)
    add_people(rt.engine, [Person(areas=["E1"], channels=EMAIL)] * 30)
    backend = Backend(rt)
    earlier = alerts.create_alert(
        rt, "community-alert", VARS, EMAIL, Targeting(areas=("E1",)), operator="pc-1"
    )
    approval.submit(rt, backend.dispatcher, earlier, operator=earlier.operator)
    backend.run()
    # When 25 more are previewed and sent at once
    add_people(rt.engine, [Person(channels=EMAIL)] * 25)
    backend = Backend(rt)
    started = datetime.now(UTC)
    eta = preview_seconds(rt)
    alert = send(rt, backend)
    backend.run()
    took = (finished(rt, alert.id or 0) - started).total_seconds()
    # Then 10 went at once and 15 when the earlier alert's last units left the window (about
    # a guarded window, less the moments since they went), as the ETA said: not 0.75 windows at
    # the average rate. (The upper bound was 1.04 windows, 0.06 s above the guarded window: a
    # full-suite run's measured send times once put the ETA at 4.17 s.)
    assert 0.86 * WINDOW < eta < GUARDED + SLACK, eta
    assert within(took, eta), (took, eta)


def test_a_routine_alert_behind_another_backlog_shares_the_channel(rt) -> None:  # type: ignore[no-untyped-def]
    # Given a routine alert of 50 emails queued and not yet worked
    add_people(rt.engine, [Person(areas=["E1"], channels=EMAIL)] * 50)
    backend = Backend(rt)
    backlog = alerts.create_alert(
        rt, "community-alert", VARS, EMAIL, Targeting(areas=("E1",)), operator="pc-1"
    )
    approval.submit(rt, backend.dispatcher, backlog, operator=backlog.operator)
    # When a second routine alert of 15 is previewed: chunks run side by side, so it is done
    # after its 15 and about as many of the other's (30 units, one window), not after all 65
    add_people(rt.engine, [Person(channels=EMAIL)] * 15)
    started = datetime.now(UTC)
    eta = preview_seconds(rt)
    assert eta == pytest.approx(GUARDED, abs=SLACK)
    alert = send(rt, backend)
    backend.run()
    # Then it finished no later than behind everything (65 units: 3 guarded windows). Which
    # chunk takes a freed window is a race (the worker that wakes first takes up to 50
    # messages), so a small alert finishes anywhere from its first window to after the other
    # alert; measured 1.1 and 3.1 windows in different runs. The ETA is the fair share.
    took = (finished(rt, alert.id or 0) - started).total_seconds()
    assert took < 3 * GUARDED + 0.3 * WINDOW, (took, eta)
    assert (finished(rt, backlog.id or 0) - started).total_seconds() > 2 * WINDOW


def test_an_urgent_alert_counts_only_urgent_work_ahead(rt) -> None:  # type: ignore[no-untyped-def]
    # Given an urgent alert of 25 queued and a routine one of 40
    add_people(rt.engine, [Person(areas=["E1"], channels=EMAIL)] * 25)
    add_people(rt.engine, [Person(areas=["N1"], channels=EMAIL)] * 40)
    backend = Backend(rt)
    for area, urgent in (("E1", True), ("N1", False)):
        earlier = alerts.create_alert(
            rt,
            "community-alert",
            VARS,
            EMAIL,
            Targeting(areas=(area,)),
            operator="pc-1",
            urgent=urgent,
        )
        approval.submit(rt, backend.dispatcher, earlier, operator=earlier.operator)
    add_people(rt.engine, [Person(channels=EMAIL)] * 10)
    # When an urgent alert of 10 is previewed: 25 urgent ahead + 10 = 35 units, one window
    eta = preview_seconds(rt, urgent=True)
    # Then the routine backlog is not ahead of it (routine chunks step aside for urgent work);
    # a routine alert of 10 has both ahead: 25 + its share 10 of the 40 + 10, two windows
    assert eta == pytest.approx(GUARDED, abs=SLACK)
    assert preview_seconds(rt) == pytest.approx(2 * GUARDED, abs=SLACK)


@pytest.mark.parametrize("channel", ["email", "voice"])
def test_a_routine_alert_behind_an_urgent_backlog_finishes_when_its_eta_says(
    database_url: str, tmp_path, channel: str
) -> None:  # type: ignore[no-untyped-def]
    # Given workers that sleep through a whole window for capacity (so urgent work keeps its
    # place) and an urgent alert of 50 emails (or calls) already sending at 20 a window
    settings = Settings(
        database_url=database_url,
        **{f"{channel}_rate": RATE},
        **({"voice_rate": None} if channel == "email" else {}),
        delivery_capacity_wait=2 * WINDOW,
        outbox_dir=tmp_path / "outbox",
        quiet_hours="off",
        _env_file=None,
    )
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine = default_force(engine)
    rt = Runtime(settings, engine=engine)
    add_people(rt.engine, [Person(areas=["E1"], channels=(channel,))] * 50)
    add_people(rt.engine, [Person(channels=(channel,))] * 15)
    backend = Backend(rt)
    urgent = alerts.create_alert(
        rt,
        "community-alert",
        VARS,
        (channel,),
        Targeting(areas=("E1",)),
        operator="pc-1",
        urgent=True,
    )
    approval.submit(rt, backend.dispatcher, urgent, operator=urgent.operator)
    worker = threading.Thread(target=backend.run)
    worker.start()
    while rt.limiter(channel).usage(channel) < 20:  # its first window went
        time.sleep(0.05)
    time.sleep(0.1 * WINDOW)
    # When a routine alert of 15 is previewed and sent while the urgent one sends
    started = datetime.now(UTC)
    eta = preview_seconds(rt, channel=channel)
    alert = send(rt, backend, channels=(channel,))
    worker.join(timeout=60)
    took = (finished(rt, alert.id or 0) - started).total_seconds()
    # Then the 30 urgent left go first (windows 2 and 3), then ours: 10 in window 3, 5 in 4,
    # about 2.95 windows after the preview, as the ETA said (the average rate says 2.25)
    assert 2.7 * WINDOW < eta < 3.1 * WINDOW, eta
    assert within(took, eta), (took, eta)
    assert finished(rt, urgent.id or 0) < finished(rt, alert.id or 0)
    engine.dispose()
