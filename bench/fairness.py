"""Benchmark: no noisy neighbour. Force B's small alert while force A's big one is sending.

    .venv/bin/python bench/fairness.py [--a 200000] [--b 5000] [--runs 5] [--fifo-runs 2]
        [--channel email] [--force-rate 300/1s] [--window 4]

One platform database (PostgreSQL) with two forces, real `dramatiq workers` processes on a
private Redis, the real channels sending to loopback sinks (`bench/sinks.py`). Each run sends
B's alert alone, then starts A's and, once A is sending, B's again; A is then cancelled. It
prints, per mode, the time from B's `send` to its first delivery (p50, p95) and to its last
(median), with A sending and alone, and their ratio. Modes: `fair` (the dispatch window:
delivery.feeds) and `fifo` (BROADCAST_DISPATCH_WINDOW=0: every chunk queued at once, as before).

`--force-rate` gives each force its own rate on the channel (a force's own sender, as each
force's voice line is its own); the platform's is unlimited. Without it the workers' CPU is the
only limit, and two forces sending at once share it. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throughput import RUN_KEY, settings_env, start_sink, stop_sink  # noqa: E402
from broadcast.alerts import approval  # noqa: E402
from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.delivery.planning import Targeting  # noqa: E402
from broadcast.forces import registry  # noqa: E402
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.bulk import refresh_statistics  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, add_people  # noqa: E402
from tests.delivery.processes import start_workers, stop_workers, wait_until  # noqa: E402
from tests.support.servers import private_redis, throwaway_postgres_database  # noqa: E402

VARS = {"headline": "Courier fraud", "message": "Police never collect your bank card."}
assert RUN_KEY


@dataclass
class Timing:
    first: float  # seconds from send to the first delivery accepted by the provider
    last: float  # seconds from send to the last delivery final


def send(rt: Runtime, backend, area: str, channel: str) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """As `broadcast alert send` does: create, plan and queue; the alert id and the send time."""
    started = time.time()
    alert = alerts.create_alert(
        rt, "community-alert", VARS, (channel,), Targeting(areas=(area,)), operator="bench"
    )
    approval.submit(rt, backend.dispatcher, alert, operator="bench")
    assert alert.id is not None
    return alert.id, started


def open_count(rt: Runtime, alert_id: int) -> int:
    with rt.engine.connect() as conn:
        sql = "SELECT count(*) FROM delivery WHERE alert_id = :a AND state IN ('queued','sending')"
        return int(conn.execute(text(sql), {"a": alert_id}).scalar_one())


def sent_count(rt: Runtime, alert_id: int) -> int:
    with rt.engine.connect() as conn:
        sql = "SELECT count(*) FROM delivery WHERE alert_id = :a AND state = 'sent'"
        return int(conn.execute(text(sql), {"a": alert_id}).scalar_one())


def timing(rt: Runtime, alert_id: int, started: float, timeout: float) -> Timing | None:
    """Wait for the alert to finish; None if it did not within `timeout`."""
    try:
        wait_until(lambda: open_count(rt, alert_id) == 0, timeout, f"alert {alert_id}")
    except AssertionError:
        return None
    with rt.engine.connect() as conn:
        first, last = conn.execute(
            text(
                "SELECT extract(epoch FROM min(finished_at)), extract(epoch FROM max(finished_at))"
                " FROM delivery WHERE alert_id = :a AND state = 'sent'"
            ),
            {"a": alert_id},
        ).one()
    return Timing(float(first) - started, float(last) - started)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def run_mode(
    rts: dict[str, Runtime],
    backend,
    args: argparse.Namespace,
    window: int,
    runs: int,  # type: ignore[no-untyped-def]
) -> tuple[list[Timing], list[Timing | None]]:
    # The sender's dispatcher decides: with 0 it starts no feed, so workers follow nothing.
    backend.rt.settings.dispatch_window = window
    alone: list[Timing] = []
    shared: list[Timing | None] = []
    for _ in range(runs):
        b_id, started = send(rts["b"], backend, "IP1", args.channel)
        result = timing(rts["b"], b_id, started, args.timeout)
        assert result is not None, "B alone did not finish"
        alone.append(result)
        a_id, _ = send(rts["a"], backend, "E1", args.channel)
        # A is under way (its workers busy) before B is sent
        wait_until(lambda a=a_id: sent_count(rts["a"], a) >= args.head_start, 600, "A sending")
        b_id, started = send(rts["b"], backend, "IP1", args.channel)
        shared.append(timing(rts["b"], b_id, started, args.timeout))
        a_left = open_count(rts["a"], a_id)
        approval.cancel(rts["a"], a_id, operator="bench", reason="benchmark run over")
        wait_until(lambda a=a_id: open_count(rts["a"], a) == 0, 600, "A's cancelled chunks")
        print(f"    run: A had {a_left:,} deliveries still open when B finished", flush=True)
    return alone, shared


def summary(label: str, timings: list[Timing]) -> str:
    firsts = [t.first for t in timings]
    return (
        f"  {label:<10} first delivery p50 {percentile(firsts, 0.5):6.2f} s, "
        f"p95 {percentile(firsts, 0.95):6.2f} s; complete (median) "
        f"{statistics.median(t.last for t in timings):6.2f} s"
    )


def report(mode: str, alone: list[Timing], shared: list[Timing | None], timeout: float) -> None:
    done = [t for t in shared if t is not None]
    print(f"\n{mode}: {len(alone)} runs")
    print(summary("B alone", alone))
    if len(done) < len(shared):
        print(
            f"  B with A:  {len(shared) - len(done)} of {len(shared)} not done in {timeout:.0f} s"
        )
    if done:
        ratio = statistics.median(t.last for t in done) / statistics.median(t.last for t in alone)
        print(f"{summary('B with A', done)} = {ratio:.2f}x alone")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=int, default=200_000, help="force A's registrants")
    parser.add_argument("--b", type=int, default=5_000, help="force B's registrants")
    parser.add_argument("--runs", type=int, default=5, help="runs with fairness")
    parser.add_argument("--fifo-runs", type=int, default=2, help="runs without (slow: B waits)")
    parser.add_argument("--channel", choices=("sms", "email"), default="email")
    parser.add_argument("--force-rate", default="", help="each force's own rate, e.g. 300/1s")
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--head-start", type=int, default=3_000, help="A's sends before B")
    parser.add_argument("--timeout", type=float, default=300.0, help="longest B may take")
    args = parser.parse_args()
    with throwaway_postgres_database() as db, private_redis() as redis_url:
        clean_postgres(db)
        redis.Redis.from_url(redis_url).ping()
        log = Path(f"/tmp/bench-fairness-{time.time():.0f}.log")
        twilio, twilio_url = start_sink([sys.executable, "-m", "bench.sinks", "twilio"])
        smtp, smtp_port = start_sink([sys.executable, "-m", "bench.sinks", "smtp"])
        env = settings_env(db, redis_url, twilio_url, smtp_port, args)
        values = {k.removeprefix("BROADCAST_").lower(): (v or None) for k, v in env.items()}
        base = Runtime(Settings(_env_file=None, **values))
        profile = {f"{args.channel}_rate": args.force_rate} if args.force_rate else {}
        registry.amend(
            base.base_engine,
            base.platform_settings,
            "default",
            new_code="met",
            name="Metropolitan Police",
        )
        met = registry.by_code(base.base_engine, "met")
        if profile:
            registry.amend(base.base_engine, base.platform_settings, "met", set_values=profile)
        suffolk = registry.add(
            base.base_engine,
            base.platform_settings,
            "suffolk",
            "Suffolk Constabulary",
            profile=profile,
        )
        rts = {"a": base.for_force(met.id), "b": base.for_force(suffolk.id)}
        started = time.perf_counter()
        for rt, area, count in ((rts["a"], "E1", args.a), (rts["b"], "IP1", args.b)):
            for start in range(0, count, 20_000):
                people = [Person(areas=(area,), channels=(args.channel,))]
                add_people(rt.engine, people * min(20_000, count - start))
        with base.base_engine.begin() as conn:
            refresh_statistics(conn, "registrant", "subscription", "registrant_area")
        print(
            f"created {args.a:,} registrants in force A, {args.b:,} in force B in "
            f"{time.perf_counter() - started:.1f} s; channel {args.channel}; each force's own "
            f"rate {args.force_rate or 'unlimited'}; {args.processes} worker processes x "
            f"{args.threads} threads; chunk {args.chunk}; window {args.window}; log {log}",
            flush=True,
        )
        from workers.embedded import Backend

        backend = Backend(base)
        workers = start_workers(env, log, processes=args.processes, threads=args.threads)
        try:
            print("warming up (B alone once)", flush=True)
            b_id, t0 = send(rts["b"], backend, "IP1", args.channel)
            timing(rts["b"], b_id, t0, args.timeout)
            results = {}
            for mode, window, runs in (
                ("fair", args.window, args.runs),
                ("fifo", 0, args.fifo_runs),
            ):
                print(f"mode {mode} (window {window}), {runs} runs", flush=True)
                results[mode] = run_mode(rts, backend, args, window, runs)
            for mode, (alone, shared) in results.items():
                report(mode, alone, shared, args.timeout)
        finally:
            stop_workers(workers)
            print(f"\ntwilio sink: {stop_sink(twilio) or 'stopped'}; smtp sink: {stop_sink(smtp)}")


if __name__ == "__main__":
    main()
