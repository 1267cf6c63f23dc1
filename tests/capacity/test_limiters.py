"""Behaviour both limiters share: the Redis one and its in-process twin, on real clocks."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from broadcast.capacity import CapacityLimiter, ExceedsCapacity, Rate
from broadcast.errors import InvalidInput

MakeLimiter = Callable[[Rate | None], CapacityLimiter]


def test_grants_up_to_count_then_says_exactly_when_room_frees(make_limiter: MakeLimiter) -> None:
    # Given a capacity of 5 units per second, with 2 units granted and then 3 more 0.2 s later
    limiter = make_limiter(Rate(5, 1))
    first = limiter.attempt("voice", 2)
    time.sleep(0.2)
    second = limiter.attempt("voice", 3)
    assert first.granted and second.granted and limiter.usage("voice") == 5

    # When one more unit is asked for, it is refused and nothing is recorded
    one = limiter.attempt("voice", 1)
    three = limiter.attempt("voice", 3)
    assert not one.granted and not three.granted
    assert limiter.usage("voice") == 5

    # Then the wait is to the instant the grant that makes room leaves the window
    assert one.wait == pytest.approx(first.at + 1 - one.at, abs=2e-6)
    assert three.wait == pytest.approx(second.at + 1 - three.at, abs=2e-6)
    assert 0.7 < one.wait <= 0.8
    assert limiter.try_acquire("voice") > 0


def test_a_unit_frees_at_its_grant_time_plus_the_window(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(Rate(2, 0.3))
    assert limiter.try_acquire("voice", 2) == 0.0
    wait = limiter.try_acquire("voice")

    time.sleep(wait + 0.002)

    assert limiter.try_acquire("voice", 2) == 0.0
    assert limiter.usage("voice") == 2


def test_acquire_sleeps_until_granted(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(Rate(2, 0.5))
    assert limiter.acquire("voice", 2, max_wait=0)

    started = time.monotonic()
    assert limiter.acquire("voice", 1, max_wait=3)

    assert 0.45 < time.monotonic() - started < 0.8


def test_acquire_gives_up_at_once_when_the_wait_is_longer_than_allowed(
    make_limiter: MakeLimiter,
) -> None:
    # Given a window that stays full for 10 s
    limiter = make_limiter(Rate(1, 10))
    assert limiter.acquire("voice", max_wait=0)

    # When a worker will wait at most half a second
    started = time.monotonic()
    attempt = limiter.wait_for("voice", max_wait=0.5)

    # Then it returns without sleeping in vain, saying when to come back
    assert time.monotonic() - started < 0.1
    assert not attempt.granted and 9 < attempt.wait <= 10
    assert not limiter.acquire("voice", max_wait=0.5)
    assert limiter.usage("voice") == 1


def test_channels_do_not_share_capacity(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(Rate(3, 10))
    assert limiter.try_acquire("voice", 3) == 0.0
    assert limiter.try_acquire("voice") > 0

    assert limiter.try_acquire("sms", 3) == 0.0
    assert limiter.usage("sms") == 3 and limiter.usage("email") == 0


def test_units_that_could_never_fit_are_refused_loudly(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(Rate(5, 1))

    with pytest.raises(ExceedsCapacity, match="can never fit in a capacity of 5/s"):
        limiter.attempt("sms", 6)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidInput):
            limiter.attempt("sms", bad)  # type: ignore[arg-type]
    assert limiter.usage("sms") == 0


def test_unlimited_grants_everything_and_records_nothing(make_limiter: MakeLimiter) -> None:
    limiter = make_limiter(None)

    assert all(limiter.try_acquire("email", 1000) == 0.0 for _ in range(50))
    assert limiter.acquire("email", max_wait=0)
    assert limiter.usage("email") == 0
