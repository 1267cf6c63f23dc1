"""Benchmark: plan and enqueue an alert to N registrants on PostgreSQL + Redis.

    .venv/bin/python bench/fanout.py --n 1000000 --naive 20000

Prints planning (one INSERT ... SELECT) and enqueueing (one Dramatiq message per chunk) rates,
peak RSS, and the naive way (one `actor.send` per recipient) on a smaller N, with the ratio.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.delivery import planning
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, add_people  # noqa: E402
from tests.support.servers import private_redis, throwaway_postgres_database  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--naive", type=int, default=20_000)
    args = parser.parse_args()
    with throwaway_postgres_database() as db, private_redis() as redis_url:
        os.environ["BROADCAST_REDIS_URL"] = redis_url
        clean_postgres(db)
        key = secrets.token_urlsafe(32)  # no key is built in
        rt = Runtime(
            Settings(_env_file=None, database_url=db, redis_url=redis_url, secret_key=key)  # type: ignore[arg-type]
        )
        from workers.embedded import Backend

        backend = Backend(rt)
        started = time.perf_counter()
        for start in range(0, args.n, 50_000):
            add_people(rt.engine, [Person(channels=("sms",))] * min(50_000, args.n - start))
        print(f"created {args.n:,} registrants in {time.perf_counter() - started:.1f} s")
        vars_ = {"headline": "Test", "message": "Bench"}
        alert = alerts.create_alert(
            rt,
            "community-alert",
            vars_,
            ("sms",),
            planning.Targeting(everyone=True),
            operator="bench",
            status="sending",  # planned and enqueued by hand: each step is timed
        )
        rss_before = peak_rss_mb()
        t0 = time.perf_counter()
        with rt.engine.begin() as conn:
            planning.plan_deliveries(conn, alert)
        t1 = time.perf_counter()
        planned = alerts.delivery_counts(rt, alert.id or 0)["sms"]
        t1b = time.perf_counter()
        with rt.engine.connect() as conn:
            messages = planning.enqueue_alert(
                conn, backend.dispatcher, alert, size=rt.settings.delivery_chunk_size
            )
        t2 = time.perf_counter()
        total = (t2 - t0) - (t1b - t1)  # the count is for printing only
        print(
            f"planned {planned:,} deliveries in {t1 - t0:.2f} s; enqueued {messages:,} "
            f"chunk messages in {t2 - t1:.2f} s; total {total:.2f} s = {planned / total:,.0f}/s"
        )
        print(f"peak RSS {peak_rss_mb():.0f} MB (before planning {rss_before:.0f} MB)")
        # The naive way: one message per recipient from a Python loop over the ids.
        actor = backend.app.deliver["sms"]
        t3 = time.perf_counter()
        with rt.engine.connect() as conn:
            ids = (
                conn.exec_driver_sql(
                    "SELECT id FROM delivery WHERE alert_id = %s ORDER BY id LIMIT %s",
                    (alert.id, args.naive),
                )
                .scalars()
                .all()
            )
        for i in ids:
            actor.send(alert.id, "sms", i - 1, i, False)
        naive = len(ids) / (time.perf_counter() - t3)
        ours = planned / total
        print(
            f"naive one-send-per-recipient: {naive:,.0f}/s on {len(ids):,}; "
            f"ours {ours:,.0f}/s = {ours / naive:.0f}x"
        )


if __name__ == "__main__":
    main()
