"""Concurrency leases in Redis and in-process: a slot frees on release or when its lease ends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis

from broadcast.capacity import (
    ConcurrencyLimiter,
    MemoryConcurrencyLimiter,
    RedisConcurrencyLimiter,
)
from broadcast.errors import ConfigurationError

MakeLeases = Callable[[int | None], ConcurrencyLimiter]


@pytest.fixture(params=["redis", "memory"])
def make_leases(request: pytest.FixtureRequest, prefix: str) -> MakeLeases:
    if request.param == "memory":
        return MemoryConcurrencyLimiter
    client: redis.Redis = request.getfixturevalue("redis_client")
    return lambda limit: RedisConcurrencyLimiter(client, limit, prefix=prefix)


def test_slots_are_held_until_released(make_leases: MakeLeases) -> None:
    # Given 2 lines, both taken
    leases = make_leases(2)
    first = leases.acquire("voice", lease_seconds=60)
    second = leases.acquire("voice", lease_seconds=60)
    assert first and second and first != second

    # When a third call wants a line, it is refused until one call completes
    assert leases.acquire("voice", lease_seconds=60) is None
    assert leases.in_use("voice") == 2
    assert leases.release("voice", first)

    # Then a line is free again, and a second release of the same lease does nothing
    assert leases.acquire("voice", lease_seconds=60, lease_id="call-3") == "call-3"
    assert not leases.release("voice", first)
    assert not leases.release("voice", "never-taken")
    assert leases.in_use("voice") == 2
    assert leases.in_use("sms") == 0


def test_a_lease_never_released_frees_itself(make_leases: MakeLeases) -> None:
    # Given one line held by a call whose completion callback never comes
    leases = make_leases(1)
    lost = leases.acquire("voice", lease_seconds=0.3)
    assert lost and leases.acquire("voice", lease_seconds=0.3) is None

    # When the lease runs out
    time.sleep(0.35)

    # Then the line is free, and the late callback's release reports the lease already gone
    assert leases.in_use("voice") == 0
    assert leases.acquire("voice", lease_seconds=60)
    assert not leases.release("voice", lost)
    assert leases.in_use("voice") == 1


def test_extending_keeps_a_long_call_on_its_line(make_leases: MakeLeases) -> None:
    leases = make_leases(1)
    call = leases.acquire("voice", lease_seconds=0.3)
    assert call

    assert leases.extend("voice", call, lease_seconds=60)
    time.sleep(0.35)

    assert leases.in_use("voice") == 1
    assert leases.acquire("voice", lease_seconds=1) is None
    assert not leases.extend("voice", "never-taken", lease_seconds=60)


def test_acquiring_again_with_the_same_lease_takes_no_second_slot(make_leases: MakeLeases) -> None:
    leases = make_leases(2)
    assert leases.acquire("voice", lease_seconds=60, lease_id="delivery-7") == "delivery-7"
    assert leases.acquire("voice", lease_seconds=60, lease_id="delivery-7") == "delivery-7"
    assert leases.in_use("voice") == 1


def test_no_more_holders_than_slots_across_threads(make_leases: MakeLeases) -> None:
    # Given 3 lines and 8 threads each placing short "calls" for a second
    leases = make_leases(3)
    holding = 0
    most = 0
    lost_releases = []
    count_lock = threading.Lock()
    stop = time.monotonic() + 1.0

    def work() -> None:
        nonlocal holding, most
        while time.monotonic() < stop:
            lease = leases.acquire("voice", lease_seconds=5)
            if lease is None:
                time.sleep(0.001)
                continue
            with count_lock:
                holding += 1
                most = max(most, holding)
            time.sleep(0.005)
            with count_lock:
                holding -= 1
            if not leases.release("voice", lease):
                lost_releases.append(lease)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then at most 3 were ever held at once, and all 3 were used
    assert most == 3
    assert lost_releases == []
    assert leases.in_use("voice") == 0


def test_no_limit_and_bad_limits(make_leases: MakeLeases) -> None:
    unlimited = make_leases(None)
    assert all(unlimited.acquire("voice", lease_seconds=1) for _ in range(100))
    for bad in (0, -1, True):
        with pytest.raises(ConfigurationError):
            make_leases(bad)
    with pytest.raises(ConfigurationError):
        make_leases(1).acquire("voice", lease_seconds=0)


def test_the_redis_lease_key_expires_after_the_longest_lease(
    redis_client: redis.Redis, prefix: str
) -> None:
    leases = RedisConcurrencyLimiter(redis_client, 5, prefix=prefix)
    leases.acquire("voice", lease_seconds=2)
    leases.acquire("voice", lease_seconds=10)

    assert 10_000 < redis_client.pttl(f"{prefix}{{voice}}:leases") <= 11_000
