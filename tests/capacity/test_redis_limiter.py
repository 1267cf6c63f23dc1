"""The Redis limiter across real OS processes sharing one real redis-server."""

from __future__ import annotations

import multiprocessing
import random
import time

import redis

from broadcast.capacity import Rate, RedisLimiter
from tests.capacity.windows import max_in_window, utilisation

RATE = Rate(20, 2)
PROCESSES = 4
RUN_SECONDS = 7.0


def _hammer(url: str, prefix: str, start: float, stop: float, seed: int) -> list[tuple[float, int]]:
    """One worker process: ask for 1-3 units at a time until `stop`; record each grant's time."""
    limiter = RedisLimiter(redis.Redis.from_url(url), RATE, prefix=prefix)
    pick = random.Random(seed)
    time.sleep(max(0.0, start - time.time()))
    grants = []
    while time.time() < stop:
        units = pick.choice((1, 1, 1, 2, 3))
        attempt = limiter.wait_for("voice", units, max_wait=stop - time.time())
        if not attempt.granted:
            break  # room for these units comes only after the end of the run
        # The limiter's own decision time (Redis TIME), so no recording delay can blur it.
        grants.append((attempt.at, units))
    return grants


def test_never_over_and_fully_used_across_processes(redis_url: str, prefix: str) -> None:
    # Given 4 worker processes with a backlog, all sharing one limiter of 20 units per 2 s
    start = time.time() + 0.5
    stop = start + RUN_SECONDS
    jobs = [(redis_url, prefix, start, stop, seed) for seed in range(PROCESSES)]

    # When they ask for units as fast as the limiter allows for 7 s
    with multiprocessing.get_context("fork").Pool(PROCESSES) as pool:
        per_process = pool.starmap(_hammer, jobs)
    grants = [grant for grants in per_process for grant in grants]

    # Then no sliding 2 s window ever held more than 20 units
    assert sum(1 for grants in per_process if grants) >= 2, "the processes competed"
    assert max_in_window(grants, RATE.seconds) <= RATE.count
    # And the capacity was used: at least 95% of it over the first four windows
    assert utilisation(grants, RATE.count, RATE.seconds, windows=3) >= 0.95
    assert any(units > 1 for _, units in grants)


def test_limiters_in_two_clients_share_one_window(redis_url: str, prefix: str) -> None:
    one = RedisLimiter(redis.Redis.from_url(redis_url), Rate(4, 10), prefix=prefix)
    other = RedisLimiter(redis.Redis.from_url(redis_url), Rate(4, 10), prefix=prefix)

    assert one.try_acquire("voice", 3) == 0.0
    assert other.try_acquire("voice", 2) > 0
    assert other.try_acquire("voice", 1) == 0.0
    assert one.usage("voice") == other.usage("voice") == 4


def test_keys_are_namespaced_and_expire(redis_client: redis.Redis, prefix: str) -> None:
    # Given a 2 s window and one grant
    limiter = RedisLimiter(redis_client, Rate(5, 2), prefix=prefix)
    assert limiter.try_acquire("voice") == 0.0

    # Then only the channel's keys exist, under the prefix, each expiring soon after the window
    keys = sorted(key.decode() for key in redis_client.scan_iter(f"{prefix}*"))
    assert keys == [f"{prefix}{{voice}}:log", f"{prefix}{{voice}}:seq"]
    for key in keys:
        assert 2000 < redis_client.pttl(key) <= 3000


def test_the_default_namespace(redis_client: redis.Redis) -> None:
    limiter = RedisLimiter(redis_client, Rate(5, 2))
    assert limiter.keys("sms") == (
        "broadcast:capacity:{sms}:log",
        "broadcast:capacity:{sms}:seq",
    )
