"""Benchmark: our sliding-log limiter against Dramatiq's Bucket and Window rate limiters.

For each limiter, N worker processes with a backlog ask for one unit at a time for --seconds,
against a private redis-server, under the same rate. Printed per limiter: the most units in any
sliding window (vs COUNT), utilisation over the whole windows of the run, p50/p99 lateness
against the ideal schedule, microseconds per limiter call, and the cost of one call at 500/1h.

    .venv/bin/python bench/capacity_limiters.py --seconds 60

Not a test: it asserts nothing. See docs/capacity.md for figures and what they mean.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

import redis
from dramatiq.rate_limits import BucketRateLimiter, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcast.capacity import Attempt, Rate, RedisLimiter  # noqa: E402
from tests.support.servers import private_redis  # noqa: E402

KINDS = ("sliding-log", "dramatiq-bucket", "dramatiq-window")


class TimedRedisLimiter(RedisLimiter):
    """Our limiter, counting the calls to Redis and the time they take; waiting is unchanged."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.durations: list[float] = []

    def _attempt(self, key: str, units: int, rate: Rate) -> Attempt:
        started = time.perf_counter()
        try:
            return super()._attempt(key, units, rate)
        finally:
            self.durations.append(time.perf_counter() - started)


def dramatiq_limiter(kind: str, url: str, key: str, rate: Rate):
    backend = RedisBackend(url=url)
    if kind == "dramatiq-bucket":
        return BucketRateLimiter(backend, key, limit=rate.count, bucket=round(rate.seconds * 1000))
    # The window limiter keeps one key per second, so its window is whole seconds.
    return WindowRateLimiter(backend, key, limit=rate.count, window=max(1, round(rate.seconds)))


def worker(kind: str, url: str, rate_text: str, start: float, stop: float, poll: float) -> dict:
    """One process with a backlog: take units until `stop`, recording (decided, returned) times."""
    rate = Rate.parse(rate_text)
    grants: list[tuple[float, float]] = []
    time.sleep(max(0.0, start - time.time()))
    if kind == "sliding-log":
        limiter = TimedRedisLimiter(redis.Redis.from_url(url), rate, prefix=f"bench:{start}:")
        while time.time() < stop:
            attempt = limiter.wait_for("voice", max_wait=stop - time.time())
            if not attempt.granted:
                break  # the next free unit comes after the end of the run
            grants.append((attempt.at, time.time()))
        return {"grants": grants, "durations": limiter.durations}
    limiter = dramatiq_limiter(kind, url, f"bench:{start}:{kind}", rate)
    durations: list[float] = []
    while time.time() < stop:
        decided, started = time.time(), time.perf_counter()
        with limiter.acquire(raise_on_failure=False) as acquired:
            pass
        durations.append(time.perf_counter() - started)
        if acquired:
            grants.append((decided, time.time()))
        else:
            # Dramatiq itself would raise RateLimitExceeded and retry after a backoff of seconds;
            # polling every few milliseconds is the most generous treatment we can give it.
            time.sleep(poll)
    return {"grants": grants, "durations": durations}


def max_in_window(times: list[float], seconds: float) -> int:
    """Most grants in any half-open window (t - seconds, t]."""
    times, most, left = sorted(times), 0, 0
    for right, at in enumerate(times):
        while times[left] <= at - seconds:
            left += 1
        most = max(most, right - left + 1)
    return most


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def analyse(results: list[dict], rate: Rate, seconds: float) -> dict:
    decided = sorted(at for result in results for at, _ in result["grants"])
    returned = [back for result in results for _, back in result["grants"]]
    durations = [took for result in results for took in result["durations"]]
    first, windows = decided[0], max(1, int(seconds // rate.seconds))
    in_run = [at for at in decided if at < first + windows * rate.seconds]
    # The ideal schedule: with a backlog, unit n could go at first + (n // COUNT) windows.
    lateness = [at - (first + (n // rate.count) * rate.seconds) for n, at in enumerate(in_run)]
    return {
        "grants": len(decided),
        "max": max_in_window(decided, rate.seconds),
        "max_returned": max_in_window(returned, rate.seconds),
        "utilisation": len(in_run) / (windows * rate.count),
        "p50": percentile(lateness, 0.50),
        "p99": percentile(lateness, 0.99),
        "us_per_call": statistics.median(durations) * 1e6,
        "us_mean": statistics.fmean(durations) * 1e6,
        "calls_per_grant": len(durations) / len(decided),
    }


def cost_at(kind: str, url: str, rate: Rate, budget: float = 3.0, most: int = 500) -> float:
    """Mean microseconds of one granted call at `rate`, on a fresh key, over at most `budget` s."""
    key = f"bench:cost:{time.time()}:{kind}"
    if kind == "sliding-log":
        ours = RedisLimiter(redis.Redis.from_url(url), rate, prefix=key)
        call = lambda: ours.attempt("voice").granted  # noqa: E731
    else:
        theirs = dramatiq_limiter(kind, url, key, rate)

        def call() -> bool:
            with theirs.acquire(raise_on_failure=False) as acquired:
                return acquired

    done, started = 0, time.perf_counter()
    while done < most and time.perf_counter() - started < budget:
        call()
        done += 1
    return (time.perf_counter() - started) / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="run length per limiter")
    parser.add_argument("--rate", default="20/2s", help="COUNT/DURATION for every limiter")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--poll", type=float, default=0.005, help="Dramatiq retry sleep, s")
    parser.add_argument("--redis-url", help="a Redis the bench may write to (default: private)")
    parser.add_argument("--only", choices=KINDS, action="append", help="run only these")
    args = parser.parse_args()
    rate = Rate.parse(args.rate)
    kinds = args.only or list(KINDS)
    if args.redis_url:
        run(args, rate, kinds, args.redis_url)
    else:
        with private_redis() as url:
            run(args, rate, kinds, url)


def run(args: argparse.Namespace, rate: Rate, kinds: list[str], url: str) -> None:
    print(f"rate {rate}, {args.processes} processes, {args.seconds:g} s per limiter, {url}")
    rows = {}
    context = multiprocessing.get_context("fork")
    for kind in kinds:
        start = time.time() + 0.5
        jobs = [(kind, url, args.rate, start, start + args.seconds, args.poll)] * args.processes
        with context.Pool(args.processes) as pool:
            rows[kind] = analyse(pool.starmap(worker, jobs), rate, args.seconds)
        rows[kind]["cost_1h"] = cost_at(kind, url, Rate(500, 3600))
        print(f"  ran {kind}", flush=True)
    base = rows.get("sliding-log")
    print()
    print(
        f"{'limiter':<16} {'grants':>6} {'max/window':>16} {'max(returned)':>14} {'util':>7} "
        f"{'p50 late':>9} {'p99 late':>9} {'µs/call p50':>17} {'mean':>6} {'calls/grant':>11} "
        f"{'µs/call 500/h':>22}"
    )
    for kind, row in rows.items():

        def vs(name: str, row: dict = row) -> str:
            return f" ({row[name] / base[name]:.1f}x)" if base and row is not base else ""

        print(
            f"{kind:<16} {row['grants']:>6} "
            f"{row['max']:>4} ({row['max'] / rate.count:.2f}xCOUNT) {row['max_returned']:>14} "
            f"{row['utilisation']:>6.1%} {row['p50'] * 1000:>7.1f}ms {row['p99'] * 1000:>7.1f}ms "
            f"{row['us_per_call']:>8.0f}{vs('us_per_call'):>9} {row['us_mean']:>6.0f} "
            f"{row['calls_per_grant']:>11.1f} "
            f"{row['cost_1h']:>12.0f}{vs('cost_1h'):>10}"
        )
    print(
        f"\nCOUNT = {rate.count} per {rate.seconds:g} s; late = behind the ideal schedule "
        "(first grant + n // COUNT windows), negative = ahead of it (over capacity)."
    )


if __name__ == "__main__":
    main()
