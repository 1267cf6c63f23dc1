"""Real processes: PostgreSQL, Redis, `dramatiq workers`, the scheduler process
(`python -m workers.scheduler`) and the Twilio-compatible test server; the CLI talks to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update

from broadcast.alerts import compose as alerts
from broadcast.alerts import lifecycle
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.tables import Registrant
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people
from tests.delivery.processes import ROOT, start_workers, stop_workers, wait_until
from tests.lifecycle.conftest import VARS
from tests.support.keys import TEST_SECRET_KEY
from tests.support.twilio_process import twilio_server_process
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN

LANDLINE = "+442079460123"


def number(i: int) -> str:
    return f"+447700{900000 + i:06d}"


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    full_env |= {"BROADCAST_SECRET_KEY": TEST_SECRET_KEY} | env
    full_env |= {"PYTHONPATH": str(ROOT), "BROADCAST_SCHEDULER_INTERVAL": "0.3"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers.scheduler"],
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def stack(postgres_url, redis_url, tmp_path, monkeypatch) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    clean_postgres(postgres_url)
    redis.Redis.from_url(redis_url).flushall()
    with twilio_server_process(tmp_path / "twilio.jsonl") as twilio:
        env = {
            "BROADCAST_DATABASE_URL": postgres_url,
            "BROADCAST_REDIS_URL": redis_url,
            "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "BROADCAST_TWILIO_API_URL": twilio.url,
            "BROADCAST_SMS_FROM": "+447700900999",
            "BROADCAST_VOICE_FROM": "+447700900998",
            "BROADCAST_VOICE_RATE": "",
            "BROADCAST_QUIET_HOURS": "off",
        }
        for name, value in env.items():  # the CLI in this process talks to the same stack
            monkeypatch.setenv(name, value)
        rt = Runtime(Settings(_env_file=None, database_url=postgres_url, redis_url=redis_url))
        running: list[subprocess.Popen[bytes]] = []
        yield {
            "env": env,
            "twilio": twilio,
            "log": tmp_path / "procs.log",
            "rt": rt,
            "procs": running,
        }
        for process in running:
            stop_workers(process)
        rt.engine.dispose()


def start_all(stack: dict) -> None:
    stack["procs"].append(start_workers(stack["env"], stack["log"], processes=1, threads=4))
    stack["procs"].append(start_scheduler(stack["env"], stack["log"]))


def test_scheduled_alert_survives_killing_every_process(stack, cli) -> None:  # type: ignore[no-untyped-def]
    rt, twilio, log = stack["rt"], stack["twilio"], stack["log"]
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(5)])
    due = datetime.now(UTC) + timedelta(seconds=6)
    send = ["alert", "send", "community-alert", "--all", "--channels", "sms", *VARS, "--yes"]
    sent = cli(*send, "--at", due.isoformat(), "--operator", "pc-1")
    assert sent.exit_code == 0 and "scheduled for" in sent.output, sent.output
    # Given the workers and the scheduler run, then are all SIGKILLed before the time
    start_all(stack)
    wait_until(lambda: "scheduler started" in log.read_text(), 20, "the scheduler", log)
    for process in stack["procs"]:
        stop_workers(process, signal.SIGKILL)
    stack["procs"].clear()
    redis.Redis.from_url(stack["env"]["BROADCAST_REDIS_URL"]).flushall()  # nothing kept there
    assert alerts.get_alert(rt, 1).status == "scheduled" and twilio.requests == []
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
    assert alerts.get_alert(rt, 1).status == "scheduled"  # nobody left to release it
    # When they start again, the (now overdue) alert is released and delivered once
    start_all(stack)
    wait_until(lambda: alerts.get_alert(rt, 1).status == "done", 40, "the release", log)
    texts = Counter(r.param("To") for r in twilio.accepted("Messages"))
    assert texts == {number(i): 1 for i in range(5)}
    steps = [(s.from_state, s.to_state, s.operator) for s in lifecycle.history(rt.engine, 1)]
    assert ("scheduled", "sending", "scheduler") in steps


def test_undeliverable_sms_escalates_to_voice_once(stack, cli) -> None:  # type: ignore[no-untyped-def]
    rt, twilio, log = stack["rt"], stack["twilio"], stack["log"]
    add_people(rt.engine, [Person(channels=("sms", "voice")) for _ in range(3)])
    add_people(rt.engine, [Person(channels=("sms",))])  # no consent to calls
    with rt.engine.begin() as conn:  # the first one can also be called on a landline
        conn.execute(update(Registrant).where(Registrant.id == 1).values(landline=LANDLINE))
    # Given the provider reports two mobiles invalid (21211): their SMS end undeliverable
    twilio.fail("21211", to=number(0))
    twilio.fail("21211", to=number(3))
    start_all(stack)
    send = ["alert", "send", "community-alert", "--all", "--channels", "sms", *VARS, "--yes"]
    sent = cli(*send, "--escalate", "sms>voice", "--escalate-after", "15m")
    assert sent.exit_code == 0, sent.output

    def escalated() -> bool:
        steps = lifecycle.children(rt.engine, 1, kind="escalation")
        return bool(steps) and alerts.get_alert(rt, steps[0].alert_id).status == "done"

    # When the workers and the scheduler have run
    wait_until(escalated, 40, "the escalation", log)
    time.sleep(1.0)  # a few more scheduler passes: still once per registrant and step
    # Then only the registrant who consented to calls was called, once
    calls = Counter(r.param("To") for r in twilio.accepted("Calls"))
    assert calls == {LANDLINE: 1}
    status = cli("alert", "status", "1").output
    assert "escalates sms>voice (not delivered within 15 min)" in status, status
    assert "escalated: alert 2 community-alert [done] voice 1" in status, status
