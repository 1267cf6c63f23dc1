from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcast.capacity import (
    MemoryLimiter,
    Rate,
    Work,
    describe,
    estimate,
    finish_at,
    forecast,
    human_duration,
)
from broadcast.errors import InvalidInput

HOURLY_500 = Rate(500, 3600)


def replay(rate: Rate, work: list[Work], *, start: list[float] | None = None) -> float:
    """The real limiter on a hand-moved clock, workers always ready: when ours' last is granted."""
    now = [0.0]
    limiter = MemoryLimiter(rate, clock=lambda: 100 + now[0])  # a clock that never goes back
    for age in start or []:
        now[0] = age
        assert limiter.try_acquire("sms") == 0.0
    now[0] = 0.0
    order = sorted(work, key=lambda w: (w.release, w.ours))
    last = 0.0
    for w in order:
        now[0] = max(now[0], w.release)
        for _ in range(w.messages):
            wait = limiter.try_acquire("sms", w.units)
            if wait:
                now[0] += wait
                assert limiter.try_acquire("sms", w.units) == 0.0
            if w.ours:
                last = now[0]
    return last


def test_the_issue_example_takes_a_full_window_not_its_average() -> None:
    # 79 calls at 60/m on an idle channel: 60 go at once, the last 19 when the first slots free
    assert estimate(79, Rate(60, 60)) == timedelta(seconds=60)
    assert (
        describe("voice", 79, Rate(60, 60), took=estimate(79, Rate(60, 60)))
        == "79 calls at 60/m: about 1 min"
    )
    # 5,000 calls behind 1,200 at 500/h on an idle channel: the 6,200th unit goes at +12 h
    assert estimate(5000, HOURLY_500, queued=1200) == timedelta(hours=12)
    # The guard lengthens every window: 62.5 s windows (2.5% of 60 s at most)
    assert estimate(79, Rate(60, 61.5)) == timedelta(seconds=61.5)


def test_units_already_in_the_window_free_when_they_were_granted_plus_a_window() -> None:
    # Given 5 of 5 units granted 8 s ago on a 10 s window: the next go at +2 s, not +10 s
    window = [-8.0] * 5
    assert estimate(5, Rate(5, 10), window=window) == timedelta(seconds=2)
    assert estimate(6, Rate(5, 10), window=window) == timedelta(seconds=12)
    assert estimate(3, Rate(5, 10), window=[-1.0, -1.0]) == timedelta(0)


@pytest.mark.parametrize(
    "work",
    [
        [Work(23, ours=True)],
        [Work(12), Work(5, ours=True)],
        [Work(7, units=2), Work(100, ours=True)],
        [Work(1, ours=True)],
        [Work(40, units=3, ours=True), Work(5)],
        [Work(9, release=25.0, ours=True), Work(30)],
        [Work(9, release=25.0), Work(4, ours=True), Work(3, release=31.0, ours=True)],
        [Work(200, units=2, ours=True), Work(31, release=7.0)],
    ],
)
@pytest.mark.parametrize("start", [None, [-9.5, -3.0, -3.0]])
def test_the_forecast_is_the_limiter_replayed(work: list[Work], start: list[float] | None) -> None:
    # Given a channel of 5 per 10 s and workers always ready, the real limiter on a moved clock
    rate = Rate(5, 10)
    last = replay(rate, work, start=start)
    # Then the forecast of the last unit is that moment exactly (periodic jump included)
    window = start or []
    assert forecast(rate, work, window=window).seconds == pytest.approx(last)


def test_messages_past_a_deadline_are_counted() -> None:
    # 12 of ours at 5/10 s idle: 5 at 0, 5 at 10, 2 at 20; deadline 15 s: 2 late, due at 20 s
    got = forecast(Rate(5, 10), [Work(12, ours=True)], deadline=15)
    assert (got.seconds, got.late, got.first_late) == (20.0, 2, 20.0)
    # The closed form for big batches counts the same: 100,000 at 500/h behind 1,200, 100 h
    big = forecast(HOURLY_500, [Work(1200), Work(100_000, ours=True)], deadline=100 * 3600)
    assert big.seconds == 202 * 3600 and big.late == 50_700 and big.first_late == 101 * 3600
    # Held until quiet hours end after the deadline: all of them are late
    held = forecast(Rate(60, 60), [Work(103, release=39_540, ours=True)], deadline=240)
    assert held.late == 103 and held.first_late == 39_540


def test_unlimited_and_unit_names() -> None:
    assert estimate(10_000, None, queued=50) == timedelta(0)
    assert (
        describe("email", 10_000, None, took=timedelta(0))
        == "10,000 emails (no capacity limit): no wait for capacity"
    )
    took = estimate(3000, Rate(10, 1))
    assert describe("sms", 3000, Rate(10, 1), took=took) == "3,000 segments at 10/s: about 5 min"
    took = estimate(1, Rate(1, 60), queued=1)
    assert (
        describe("voice", 1, Rate(1, 60), queued=1, took=took)
        == "1 call at 1/m after 1 queued: about 1 min"
    )


def test_finish_time() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    assert finish_at(5000, HOURLY_500, queued=1200, now=now) == datetime(
        2026, 3, 1, 21, 0, tzinfo=UTC
    )
    assert finish_at(1, None, now=now) == now
    assert finish_at(1, None).tzinfo is not None


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.2, "1 s"),
        (40, "40 s"),
        (59.4, "59 s"),
        (59.6, "1 min"),
        (7 * 60 + 20, "7 min"),
        (3599, "1 h"),
        (3600, "1 h"),
        (12.4 * 3600, "12 h 24 min"),
        (24 * 3600, "1 d"),
        (27.4 * 3600, "1 d 3 h"),
    ],
)
def test_human_duration(seconds: float, shown: str) -> None:
    assert human_duration(timedelta(seconds=seconds)) == shown


def test_bad_counts_are_refused() -> None:
    for bad in ({"units": -1}, {"queued": -5}, {"units": 1.5}):
        args = {"units": 10, "rate": HOURLY_500} | bad
        with pytest.raises(InvalidInput):
            estimate(**args)  # type: ignore[arg-type]


def test_the_window_gives_each_units_grant_time_for_the_replay(make_limiter) -> None:  # type: ignore[no-untyped-def]
    import time

    # Given 2 units granted, then 1 more 0.2 s later, on a 1 s window (Redis and in-process)
    limiter = make_limiter(Rate(5, 1))
    assert limiter.try_acquire("sms", 2) == 0.0
    time.sleep(0.2)
    assert limiter.try_acquire("sms") == 0.0
    # Then the window lists each unit's grant time before now, oldest first
    ages = limiter.window("sms")
    assert len(ages) == 3 and ages == sorted(ages)
    assert -0.5 < ages[0] <= -0.2 and ages[0] == pytest.approx(ages[1]) and -0.3 < ages[2] <= 0
    # And the replay from it says when the next units fit: 2 now, 2 more when the first free
    seconds = forecast(limiter.rate, [Work(4, ours=True)], window=ages).seconds
    assert seconds == pytest.approx(1 + ages[0], abs=0.01)
    # Once the window has passed, nothing is left in it; unlimited has no window
    time.sleep(1.0)
    assert limiter.window("sms") == []
    assert make_limiter(None).window("sms") == []
