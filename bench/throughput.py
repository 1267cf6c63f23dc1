"""Benchmark: deliver an alert end to end into loopback sinks, capacity unlimited.

    .venv/bin/python bench/throughput.py --n 20000 --naive 1000 [--processes 3] [--threads 4]

Real `dramatiq workers` processes on a private Redis, PostgreSQL state updates, the real
channels (the official Twilio client for SMS and voice, aiosmtplib for email) sending to
loopback sinks that run as their own processes (`bench/sinks.py`, or `--sink test-server` for
the contract-checking Twilio test server). Prints deliveries/s per channel and overall, CPU per
delivery (the workers alone, and everything: workers, sinks, Redis, our PostgreSQL backends),
and, in the same run with the same workers, the naive design: one Dramatiq message per delivery,
each claimed, sent and recorded on its own. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import secrets
import subprocess
import sys
import time
from pathlib import Path

import redis
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import proc_cpu  # noqa: E402
from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.delivery import planning
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.bulk import refresh_statistics  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, add_people  # noqa: E402
from tests.delivery.processes import start_workers, stop_workers, wait_until  # noqa: E402

RUN_KEY = secrets.token_urlsafe(32)
from tests.support.servers import private_redis, throwaway_postgres_database  # noqa: E402
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def start_sink(command: list[str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY "):
        raise RuntimeError(f"sink did not start: {command} said {line!r}")
    return process, line.split()[1]


def stop_sink(process: subprocess.Popen[str]) -> str:
    process.terminate()
    out, _ = process.communicate(timeout=10)
    return out.strip()


def settings_env(db: str, redis_url: str, twilio_url: str, smtp_port: str, args) -> dict:  # type: ignore[no-untyped-def]
    return {
        "BROADCAST_SECRET_KEY": RUN_KEY,  # no key is built in; the workers get the same one
        "BROADCAST_DATABASE_URL": db,
        "BROADCAST_REDIS_URL": redis_url,
        "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "BROADCAST_TWILIO_API_URL": twilio_url,
        "BROADCAST_SMS_FROM": "+447700900999",
        "BROADCAST_VOICE_FROM": "+447700900998",
        "BROADCAST_SMTP_HOST": "127.0.0.1",
        "BROADCAST_SMTP_PORT": smtp_port,
        "BROADCAST_SMTP_TLS": "none",
        "BROADCAST_EMAIL_FROM": "alerts@example.org",
        "BROADCAST_VOICE_RATE": "",  # capacity unlimited on every channel
        "BROADCAST_QUIET_HOURS": "off",  # routine calls are held at night otherwise
        "BROADCAST_DELIVERY_CHUNK_SIZE": str(args.chunk),
    }


class Meter:
    """CPU of the workers, the sinks, Redis and our PostgreSQL backends, and the machine."""

    def __init__(self, rt: Runtime, workers_pgid: int, sinks: list[int], redis_pid: int) -> None:
        self.rt, self.pgid, self.sinks, self.redis_pid = rt, workers_pgid, sinks, redis_pid

    def _pg_pids(self) -> list[int]:
        with self.rt.engine.connect() as conn:
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            return list(conn.execute(text(sql)).scalars())

    def snapshot(self) -> dict[str, object]:
        return {
            "workers": proc_cpu.cpu_sum(proc_cpu.group_pids(self.pgid)),
            "sinks": proc_cpu.cpu_sum(self.sinks),
            "redis": proc_cpu.cpu_sum([self.redis_pid]),
            "postgres": proc_cpu.cpu_sum(self._pg_pids()),
            "machine": proc_cpu.machine_busy(),
            "at": time.perf_counter(),
        }

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        out = {
            k: proc_cpu.used_between(before[k], after[k])
            for k in before
            if k not in ("machine", "at")
        }
        out["machine"] = after["machine"] - before["machine"]
        out["wall"] = after["at"] - before["at"]
        return out


def run_alert(rt: Runtime, backend, meter: Meter, area: str, channels, size: int, timeout: float):  # type: ignore[no-untyped-def]
    """Plan, enqueue (one message per `size` deliveries) and wait until every delivery is final."""
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARS,
        channels,
        planning.Targeting(areas=(area,)),
        operator="bench",
        status="sending",
    )
    before = meter.snapshot()
    with rt.engine.begin() as conn:
        count = planning.plan_deliveries(conn, alert)
    with rt.engine.begin() as conn:
        # As sending an alert does (alerts.lifecycle): claims then know the table's size.
        planning.refresh_delivery_statistics(conn, count)
    planned = time.perf_counter()
    with rt.engine.connect() as conn:
        planning.enqueue_alert(conn, backend.dispatcher, alert, size=size)
    enqueued = time.perf_counter()
    busy = text(
        "SELECT count(*) FROM delivery WHERE alert_id = :a AND state IN ('queued', 'sending')"
    )

    def finished() -> bool:
        with rt.engine.connect() as conn:
            return conn.execute(busy, {"a": alert.id}).scalar_one() == 0

    wait_until(finished, timeout, f"alert {alert.id} to finish")
    after = meter.snapshot()
    with rt.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT channel, state, count(*), extract(epoch FROM max(finished_at) - "
                "min(claimed_at)) FROM delivery WHERE alert_id = :a GROUP BY channel, state"
            ),
            {"a": alert.id},
        ).all()
    return {
        "rows": rows,
        "cpu": Meter.used(before, after),
        "plan": planned - before["at"],
        "enqueue": enqueued - planned,
    }


def report(name: str, result: dict) -> float:
    cpu, sent = result["cpu"], 0
    print(
        f"\n{name}: plan {result['plan']:.2f} s, enqueue {result['enqueue']:.2f} s, "
        f"wall {cpu['wall']:.2f} s (plan to last final state)"
    )
    for channel, state, n, span in result["rows"]:
        line = f"  {channel:<5} {state:<10} {n:>8,}"
        if state == "sent":
            sent += n
            line += f"  {n / float(span):>8,.0f}/s over its own first claim..last send"
        print(line)
    rate = sent / cpu["wall"]
    every = sum(cpu[k] for k in ("workers", "sinks", "redis", "postgres"))
    ms = {k: cpu[k] / sent * 1e3 for k in ("workers", "sinks", "redis", "postgres")}
    print(
        f"  overall {rate:,.0f} deliveries/s; CPU per delivery: workers {ms['workers']:.3f} ms, "
        f"all ours {every / sent * 1e3:.3f} ms (sinks {ms['sinks']:.3f}, redis "
        f"{ms['redis']:.3f}, postgres {ms['postgres']:.3f}); "
        f"machine busy {cpu['machine'] / cpu['wall']:.2f} of 2 cores, of which not ours "
        f"{max(0.0, cpu['machine'] - every) / cpu['wall']:.2f}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="registrants in the main alert")
    parser.add_argument("--naive", type=int, default=2_000, help="registrants in the naive one")
    parser.add_argument("--channels", default="sms,email,voice")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=500)
    parser.add_argument("--sink", choices=("lean", "test-server"), default="lean")
    args = parser.parse_args()
    channels = tuple(args.channels.split(","))
    with throwaway_postgres_database() as db, private_redis() as redis_url:
        clean_postgres(db)
        client = redis.Redis.from_url(redis_url)
        redis_pid = int(client.info("server")["process_id"])
        log = Path(f"/tmp/bench-throughput-{time.time():.0f}.log")
        if args.sink == "lean":
            twilio_cmd = [sys.executable, "-m", "bench.sinks", "twilio"]
        else:
            twilio_cmd = [sys.executable, "-m", "tests.support.twilio_server"]
        twilio, twilio_url = start_sink(twilio_cmd)
        smtp, smtp_port = start_sink([sys.executable, "-m", "bench.sinks", "smtp"])
        env = settings_env(db, redis_url, twilio_url, smtp_port, args)
        values = {k.removeprefix("BROADCAST_").lower(): (v or None) for k, v in env.items()}
        rt = Runtime(Settings(_env_file=None, **values))
        started = time.perf_counter()
        for area, count in (("ZZ1", 300), ("SW1A", args.n), ("E1", args.naive)):
            for start in range(0, count, 20_000):
                people = [Person(areas=(area,), channels=channels)] * min(20_000, count - start)
                add_people(rt.engine, people)
        with rt.engine.begin() as conn:
            # As an import of this size does (importing.importer): without statistics the
            # planner's guesses make planning 300 deliveries take 18 s instead of 10 ms.
            refresh_statistics(conn, "registrant", "subscription", "registrant_area")
        print(
            f"created {300 + args.n + args.naive:,} registrants in "
            f"{time.perf_counter() - started:.1f} s; channels {','.join(channels)}; "
            f"{args.processes} worker processes x {args.threads} threads; chunk {args.chunk}; "
            f"sink {args.sink}; log {log}"
        )
        from workers.embedded import Backend

        backend = Backend(rt)
        workers = start_workers(env, log, processes=args.processes, threads=args.threads)
        try:
            meter = Meter(rt, workers.pid, [twilio.pid, smtp.pid], redis_pid)
            run_alert(rt, backend, meter, "ZZ1", channels, args.chunk, 120)  # warm-up
            ours = report(
                "chunked (ours)", run_alert(rt, backend, meter, "SW1A", channels, args.chunk, 900)
            )
            naive = report(
                "naive (one message per delivery)",
                run_alert(rt, backend, meter, "E1", channels, 1, 900),
            )
            print(f"\nours {ours:,.0f}/s vs naive {naive:,.0f}/s = {ours / naive:.1f}x")
        finally:
            stop_workers(workers)
            print(f"twilio sink: {stop_sink(twilio) or 'stopped'}; smtp sink: {stop_sink(smtp)}")


if __name__ == "__main__":
    main()
