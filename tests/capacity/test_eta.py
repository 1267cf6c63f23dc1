from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.capacity import MemoryLimiter, Rate, describe, estimate, finish_at, human_duration
from broadcast.errors import InvalidInput

HOURLY_500 = Rate(500, 3600)


def test_the_issue_example() -> None:
    # 6,200 units at 500 an hour with the window already full: 12.4 h = 12 h 24 min.
    assert estimate(5000, HOURLY_500, queued=1200) == timedelta(hours=12, minutes=24)
    assert (
        describe("voice", 5000, HOURLY_500, queued=1200)
        == "5,000 calls at 500/h after 1,200 queued: about 12 h 24 min"
    )


def test_units_that_fit_in_the_free_part_of_the_window_go_at_once() -> None:
    # Given an idle channel (the whole window free): the first 500 need no wait
    assert estimate(500, HOURLY_500, available=500) == timedelta(0)
    assert describe("voice", 500, HOURLY_500, available=500) == (
        "500 calls at 500/h: no wait for capacity"
    )
    assert estimate(5000, HOURLY_500, available=500) == timedelta(hours=9)
    # More free room than the window holds is not believed
    assert estimate(5000, HOURLY_500, available=10_000) == timedelta(hours=9)


@pytest.mark.parametrize(("units", "queued"), [(23, 0), (5, 12), (100, 7), (1, 0), (40, 5)])
def test_the_estimate_is_within_one_window_of_a_simulated_idle_channel(
    units: int, queued: int
) -> None:
    # Given an idle channel of 5 per 10 s and workers always ready, run on a hand-moved clock
    rate = Rate(5, 10)
    now = [0.0]
    limiter = MemoryLimiter(rate, clock=lambda: now[0])
    last = 0.0
    for _ in range(queued + units):
        wait = limiter.try_acquire("sms")
        if wait:
            now[0] += wait
            assert limiter.try_acquire("sms") == 0.0
        last = now[0]

    # Then the ETA of the last unit is exact or early by less than one window
    eta = estimate(units, rate, queued=queued, available=rate.count).total_seconds()
    assert last == pytest.approx(
        math.ceil((queued + units - 5) / 5) * 10 if units + queued > 5 else 0
    )
    assert 0 <= last - eta < rate.seconds


def test_unlimited_and_unit_names() -> None:
    assert estimate(10_000, None, queued=50) == timedelta(0)
    assert (
        describe("email", 10_000, None) == "10,000 emails (no capacity limit): no wait for capacity"
    )
    assert describe("sms", 3000, Rate(10, 1)) == "3,000 segments at 10/s: about 5 min"
    assert (
        describe("voice", 1, Rate(1, 60), queued=1) == "1 call at 1/m after 1 queued: about 2 min"
    )


def test_finish_time() -> None:
    now = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    assert finish_at(5000, HOURLY_500, queued=1200, now=now) == datetime(
        2026, 3, 1, 21, 24, tzinfo=UTC
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
    for bad in ({"units": -1}, {"queued": -5}, {"available": 1.5}):
        args = {"units": 10, "rate": HOURLY_500} | bad
        with pytest.raises(InvalidInput):
            estimate(**args)  # type: ignore[arg-type]
