"""Benchmark: a channel's capacity through the full stack, then the limiters alone.

    .venv/bin/python bench/capacity.py --seconds 60

Part 1: 4 real `dramatiq workers` processes (4 threads each) on one private Redis deliver an SMS
alert with a backlog under BROADCAST_SMS_RATE (default `20/2s`) to the Twilio-compatible test
server, run as its own process, which records the time of every request. Printed: the most
units (segments) in any sliding window at the provider vs COUNT, utilisation, p50/p99 lateness
against the ideal schedule, and nothing lost or duplicated.
Part 2, in the same run: `bench/capacity_limiters.py` (our sliding log against Dramatiq's
BucketRateLimiter and WindowRateLimiter, limiter calls only, same rate and process count).
Not a test: it asserts nothing. Figures: docs/capacity.md, docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import capacity_limiters  # noqa: E402
from bench.throughput import settings_env  # noqa: E402
from broadcast.alerts import approval  # noqa: E402
from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.capacity import Rate  # noqa: E402
from broadcast.delivery import planning
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, add_people  # noqa: E402
from tests.delivery.processes import start_workers, stop_workers, wait_until  # noqa: E402
from tests.support.servers import private_redis, throwaway_postgres_database  # noqa: E402
from tests.support.twilio_process import twilio_server_process  # noqa: E402

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def max_units_in_window(times: list[float], units: int, seconds: float) -> int:
    return capacity_limiters.max_in_window(times, seconds) * units


def full_stack(args: argparse.Namespace, rate: Rate, db: str, redis_url: str) -> None:
    clean_postgres(db)
    record = Path(f"/tmp/bench-capacity-{time.time():.0f}.jsonl")
    log = record.with_suffix(".log")
    with twilio_server_process(record) as twilio:
        env = settings_env(db, redis_url, twilio.url, "25", argparse.Namespace(chunk=500))
        env["BROADCAST_SMS_RATE"] = args.rate
        values = {k.removeprefix("BROADCAST_").lower(): (v or None) for k, v in env.items()}
        rt = Runtime(Settings(_env_file=None, **values))
        # Enough people for a backlog that outlasts the run.
        people = int(rate.count * args.seconds / rate.seconds * 1.3) + rate.count
        add_people(rt.engine, [Person(channels=("sms",))] * people)
        from workers.embedded import Backend

        workers = start_workers(env, log, processes=args.processes, threads=args.threads)
        try:
            time.sleep(3)  # let the processes boot, so the first window is not spent forking
            alert = alerts.create_alert(
                rt,
                "community-alert",
                VARS,
                ("sms",),
                planning.Targeting(everyone=True),
                operator="bench",
            )
            approval.submit(rt, Backend(rt).dispatcher, alert, operator=alert.operator)
            wait_until(lambda: bool(twilio.requests), 30, "the first SMS", log)
            first = twilio.requests[0].time
            time.sleep(max(0.0, first + args.seconds + 0.5 - time.time()))
        finally:
            stop_workers(workers)
        requests = twilio.requests
        violations = twilio.violations
    accepted = [r for r in requests if r.accepted]
    status = alerts.alert_status(rt, alert.id or 0).states["sms"]
    with rt.engine.connect() as conn:
        units = conn.exec_driver_sql(
            "SELECT max(units) FROM delivery WHERE state = 'sent'"
        ).scalar_one()
    times = sorted(r.time for r in accepted)
    per_window = rate.count // units
    # Ideal schedule: batch k (of COUNT units) at anchor + k windows. The anchor is the latest
    # one no request beats, so lateness >= 0 and shows jitter plus any drift over the run.
    anchor = min(t - (n // per_window) * rate.seconds for n, t in enumerate(times))
    lateness = [t - anchor - (n // per_window) * rate.seconds for n, t in enumerate(times)]
    # With a backlog, N units take (N - COUNT) / COUNT windows after the first grant.
    ideal = (len(times) * units - rate.count) / rate.count * rate.seconds
    utilisation = ideal / (times[-1] - times[0])
    p50, p99 = (capacity_limiters.percentile(lateness, q) for q in (0.5, 0.99))
    to = Counter(r.param("To") for r in accepted)
    print(
        f"full stack: {args.processes} worker processes x {args.threads} threads, "
        f"SMS {rate} ({units} segment(s) per SMS), {args.seconds:g} s, Twilio test server process"
    )
    print(
        f"  requests {len(requests)}, accepted {len(accepted)}, distinct numbers {len(to)}, "
        f"most to one number {max(to.values())}; database: {status}; contract violations "
        f"{len(violations)}"
    )
    most = max_units_in_window(times, units, rate.seconds)
    most_less = max_units_in_window(times, units, rate.seconds - 0.1)
    # The first batch opens the connections, so it reaches the provider later than it was granted.
    warm = max_units_in_window(times[per_window:], units, rate.seconds)
    print(
        f"  max units in any sliding {rate.seconds:g} s window at the provider: {most} "
        f"(COUNT {rate.count}); after the first batch: {warm}; in any {rate.seconds - 0.1:g} s "
        f"window: {most_less}"
    )
    print(
        f"  utilisation {utilisation:.1%} (ideal time for {len(times) * units} units / actual "
        f"{times[-1] - times[0]:.2f} s); lateness vs ideal p50 {p50 * 1e3:.1f} ms, "
        f"p99 {p99 * 1e3:.1f} ms"
    )
    print(f"  request record {record}, worker log {log}\n", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", default="20/2s")
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--limiter-seconds", type=float, help="part 2 per limiter (= --seconds)")
    parser.add_argument("--poll", type=float, default=0.005, help="Dramatiq limiters' retry sleep")
    parser.add_argument("--skip-limiters", action="store_true")
    args = parser.parse_args()
    rate = Rate.parse(args.rate)
    with throwaway_postgres_database() as db, private_redis() as redis_url:
        full_stack(args, rate, db, redis_url)
        if not args.skip_limiters:
            limiter_args = argparse.Namespace(
                seconds=args.limiter_seconds or args.seconds,
                rate=args.rate,
                processes=args.processes,
                poll=args.poll,
            )
            capacity_limiters.run(limiter_args, rate, list(capacity_limiters.KINDS), redis_url)


if __name__ == "__main__":
    main()
