"""Benchmark: SIGKILL every worker mid-alert and count, at the providers, what was lost or doubled.

    .venv/bin/python bench/crash_recovery.py [--n 20000] [--kill-at 0.4] [--processes 2]

PostgreSQL (a throwaway database), a private Redis, real `dramatiq workers` processes and the
Procfile's `python -m workers.sweeper`, the contract-checking Twilio test server (its own
process) and aiosmtpd. An alert to N registrants on SMS, email and voice; when the given share
of its deliveries has gone out, every worker process is SIGKILLed and fresh ones are started at
once (as a process supervisor would). Prints, per channel: people not reached (lost), copies
(duplicated), deliveries `sending` at the kill (in doubt), deliveries flagged by recovery, and
the seconds from the kill to the first provider request after it and to the alert's end.
Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcast.alerts import approval  # noqa: E402
from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.delivery.planning import Targeting  # noqa: E402
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.tables import Delivery  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, add_people  # noqa: E402
from tests.delivery.processes import start_workers, stop_workers, wait_until  # noqa: E402
from tests.support.servers import private_redis, throwaway_postgres_database  # noqa: E402
from tests.support.smtp_server import smtp_test_server  # noqa: E402
from tests.support.twilio_process import twilio_server_process  # noqa: E402
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}
CHANNELS = ("sms", "email", "voice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="registrants (x 3 channels)")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share delivered at the kill")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"crash-recovery-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "processes.log"
    with (
        throwaway_postgres_database() as db,
        private_redis() as redis_url,
        twilio_server_process(work / "twilio.jsonl") as twilio,
        smtp_test_server() as smtp,
    ):
        env = {
            "BROADCAST_DATABASE_URL": db,
            "BROADCAST_REDIS_URL": redis_url,
            "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "BROADCAST_TWILIO_API_URL": twilio.url,
            "BROADCAST_SMS_FROM": "+447700900999",
            "BROADCAST_VOICE_FROM": "+447700900998",
            "BROADCAST_SMTP_HOST": "127.0.0.1",
            "BROADCAST_SMTP_PORT": str(smtp.port),
            "BROADCAST_SMTP_TLS": "none",
            "BROADCAST_EMAIL_FROM": "alerts@example.org",
            "BROADCAST_VOICE_RATE": "",
            "BROADCAST_QUIET_HOURS": "off",
            # No key is built in; every process of the run gets the same one.
            "BROADCAST_SECRET_KEY": secrets.token_urlsafe(32),
        }
        settings = Settings(
            _env_file=None,
            **{k.removeprefix("BROADCAST_").lower(): (v or None) for k, v in env.items()},
        )
        clean_postgres(db)  # migrated, as `broadcast db upgrade` leaves it at a deploy
        rt = Runtime(settings)
        add_people(rt.engine, [Person() for _ in range(args.n)])
        from workers.embedded import Backend

        backend = Backend(rt)
        alert = alerts.create_alert(
            rt, "community-alert", VARS, CHANNELS, Targeting(everyone=True), operator="bench"
        )
        approval.submit(rt, backend.dispatcher, alert, operator=alert.operator)
        sweeper = start_process([sys.executable, "-m", "workers.sweeper"], env, log)
        started = time.time()
        workers = start_workers(env, log, processes=args.processes, threads=args.threads)
        total = args.n * len(CHANNELS)
        wait_until(
            lambda: delivered(rt, alert.id) >= args.kill_at * total, 600, "the kill point", log
        )
        stop_workers(workers, signal.SIGKILL)
        killed = time.time()
        at_kill = alerts.alert_status(rt, alert.id).states
        workers = start_workers(env, log, processes=args.processes, threads=args.threads)
        try:
            wait_until(lambda: alerts.alert_status(rt, alert.id).done, 1200, "the end", log)
        finally:
            stop_workers(workers)
            stop_workers(sweeper)
        ended = time.time()
        report(rt, alert.id, args, twilio, smtp, at_kill, started, killed, ended)


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=base | env | {"PYTHONPATH": str(ROOT)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def delivered(rt: Runtime, alert_id: int) -> int:
    with rt.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count(Delivery.id)).where(
                    Delivery.alert_id == alert_id, Delivery.state == "sent"
                )
            ).scalar_one()
        )


def report(rt, alert_id, args, twilio, smtp, at_kill, started, killed, ended) -> None:  # type: ignore[no-untyped-def]
    requests = twilio.requests
    got = {
        "sms": Counter(r.param("To") for r in requests if r.resource == "Messages" and r.sid),
        "voice": Counter(r.param("To") for r in requests if r.resource == "Calls" and r.sid),
        "email": Counter(m.rcpt_tos[0] for m in smtp.messages),
    }
    with rt.engine.connect() as conn:
        flagged = {
            channel: count
            for channel, count in conn.execute(
                select(Delivery.channel, func.count(Delivery.id))
                .where(Delivery.alert_id == alert_id, Delivery.recovered.is_not(None))
                .group_by(Delivery.channel)
            ).all()
        }
    resumed = min((r.time for r in requests if r.time > killed + 0.2), default=float("nan"))
    print(
        f"{args.n:,} registrants x {len(CHANNELS)} channels, {args.processes} worker processes x "
        f"{args.threads} threads; killed at {args.kill_at:.0%} delivered"
    )
    print(f"{'channel':8} {'lost':>6} {'doubled':>8} {'in doubt at kill':>17} {'flagged':>8}")
    for channel in CHANNELS:
        counts = got[channel]
        lost = args.n - len(counts)
        doubled = sum(n - 1 for n in counts.values())
        doubt = at_kill.get(channel, {}).get("sending", 0)
        print(f"{channel:8} {lost:>6} {doubled:>8} {doubt:>17} {flagged.get(channel, 0):>8}")
    print(
        f"kill -> first provider request after it: {resumed - killed:.1f} s; kill -> alert done: "
        f"{ended - killed:.1f} s; whole alert: {ended - started:.1f} s"
    )
    print(f"Twilio contract violations: {len(twilio.violations)}")


if __name__ == "__main__":
    main()
