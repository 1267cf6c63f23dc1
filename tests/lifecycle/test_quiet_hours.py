"""Quiet hours: routine calls held (queued, not failed) until the local end, across DST, with an
injectable clock instead of sleeps; urgent alerts go through; the ETA says so."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from broadcast.alerts import approval, scheduling
from broadcast.alerts import compose as alerts
from broadcast.clock import FixedClock
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.delivery.quiet_hours import QuietHours, normalise
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from broadcast.store.tables import Registrant
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import default_force

LONDON = ZoneInfo("Europe/London")
VARIABLES = {"headline": "Road closed", "message": "Avoid the high street."}


def build(tmp_path, redis_url: str | None) -> tuple[Runtime, RecordingChannel]:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'q.db'}",
        redis_url=redis_url,
        voice_rate=None,
        quiet_hours="21:00-08:00",
        _env_file=None,
    )
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    engine = default_force(engine)
    voice = RecordingChannel(name="voice")
    return Runtime(settings, engine=engine, channels={"voice": voice}), voice


def send(rt: Runtime, *, urgent: bool = False):  # type: ignore[no-untyped-def]
    dispatcher = RecordingDispatcher()
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARIABLES,
        ("voice",),
        Targeting(everyone=True),
        operator="pc-1",
        urgent=urgent,
        status="draft",
    )
    approval.submit(rt, dispatcher, alert, operator="pc-1")
    return alert, dispatcher.take()


def test_parse_and_wall_clock_ends() -> None:
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet is not None and quiet.contains(time(23, 0)) and not quiet.contains(time(8, 0))
    assert normalise("off") == "off" and normalise("default") is None
    assert normalise(" 22:30-07:00 ") == "22:30-07:00"
    with pytest.raises(InvalidInput, match="must look like"):
        QuietHours.parse("9pm-8am")
    # Autumn: 22:30 BST on 24 October; the clocks go back at 02:00, so 08:00 GMT is 10.5 h later
    evening = datetime(2026, 10, 24, 21, 30, tzinfo=UTC)
    end = quiet.ends_after(evening, LONDON)
    assert end is not None and end.astimezone(UTC) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)
    assert quiet.ends_after(datetime(2026, 10, 25, 8, 0, tzinfo=UTC), LONDON) is None


def test_hold_released_at_local_end_across_spring_dst(tmp_path, redis_url) -> None:  # type: ignore[no-untyped-def]
    rt, voice = build(tmp_path, redis_url)
    # 22:00 GMT on Saturday 28 March 2026; at 01:00 GMT the clocks go forward to 02:00 BST
    clock = FixedClock(datetime(2026, 3, 28, 22, 0, tzinfo=UTC))
    rt.clock = clock
    night_owl, late, default = add_people(rt.engine, [Person(channels=("voice",))] * 3)
    with rt.engine.begin() as conn:
        conn.execute(update(Registrant).where(Registrant.id == night_owl).values(quiet_hours="off"))
        late_hours = "22:30-06:30"
        conn.execute(update(Registrant).where(Registrant.id == late).values(quiet_hours=late_hours))
    alert, [chunk] = send(rt)
    # The ETA says calls are held, and until when (local time)
    eta = alerts.alert_status(rt, alert.id).eta["voice"]
    assert "held for quiet hours (21:00-08:00) until 08:00 BST" in eta, eta
    # When the chunk runs at 22:00: the "off" and the 22:30 registrants are called now
    outcome = deliver_chunk(rt, chunk)
    assert len(voice.sent) == 2
    # Then the default registrant is held (still queued), to 08:00 BST = 07:00 UTC: 9 h, not 10
    assert outcome.reason == "quiet-hours" and outcome.retry_after == 9 * 3600
    assert alerts.alert_status(rt, alert.id).states["voice"] == {"sent": 2, "queued": 1}
    # A minute before the end it is still held
    clock.at = datetime(2026, 3, 29, 6, 59, tzinfo=UTC)
    assert deliver_chunk(rt, chunk).retry_after == 60 and len(voice.sent) == 2
    # At 08:00 BST the call is made and the alert completes
    clock.at = datetime(2026, 3, 29, 7, 0, tzinfo=UTC)
    assert deliver_chunk(rt, chunk).retry_after is None
    assert len(voice.sent) == 3 and alerts.get_alert(rt, alert.id).status == "done"
    assert voice.sent[-1].to == f"+447700{900000 + default - 1:06d}"


def test_urgent_goes_through_and_embedded_holds_for_the_scheduler(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rt, voice = build(tmp_path, None)
    clock = FixedClock(datetime(2026, 11, 23, 23, 0, tzinfo=UTC))
    rt.clock = clock
    add_people(rt.engine, [Person(channels=("voice",))] * 2)
    _, [urgent_chunk] = send(rt, urgent=True)
    deliver_chunk(rt, urgent_chunk)
    assert len(voice.sent) == 2
    # Routine, without Redis: held rows stay queued, no delayed message (nothing to wait on it)
    routine, [chunk] = send(rt)
    assert deliver_chunk(rt, chunk).retry_after is None and len(voice.sent) == 2
    # The scheduler's pass queues them again; once quiet hours end they go
    clock.at = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    dispatcher = RecordingDispatcher()
    assert scheduling.tick(rt, dispatcher, embedded=True).requeued == 1
    deliver_chunk(rt, dispatcher.take()[0])
    assert len(voice.sent) == 4 and alerts.get_alert(rt, routine.id).status == "done"
