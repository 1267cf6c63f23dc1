"""Redis down when an operator sends: the alert is saved, the command says so in one line (exit
3), and once Redis is back the sweep hands it to real `dramatiq` workers, which send every
message exactly once (counted at the Twilio test server and at aiosmtpd). PostgreSQL throughout;
the `broadcast` command runs as its own process, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broadcast.alerts import compose as alerts
from broadcast.delivery import recovery
from broadcast.store.tables import Alert, Delivery
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people
from tests.delivery.processes import ROOT, wait_until, workers
from tests.delivery.test_workers_e2e import runtime
from tests.support.keys import TEST_SECRET_KEY
from tests.support.restartable_redis import restartable_redis
from tests.support.servers import free_port
from tests.support.smtp_server import smtp_test_server
from tests.support.twilio_process import twilio_server_process
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN

PASSWORD = "s3cret-broker-pw"  # must never be printed
SEND = ["alert", "send", "community-alert", "--all", "--channels", "sms,email"]
SEND += ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]
PEOPLE = 30


@pytest.fixture
def outage(postgres_url, tmp_path) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    clean_postgres(postgres_url)
    with (
        restartable_redis(PASSWORD) as broker,
        twilio_server_process(tmp_path / "twilio.jsonl") as twilio,
        smtp_test_server() as smtp,
    ):
        env = {
            "BROADCAST_DATABASE_URL": postgres_url,
            "BROADCAST_REDIS_URL": broker.url,
            "BROADCAST_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "BROADCAST_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "BROADCAST_TWILIO_API_URL": twilio.url,
            "BROADCAST_SMS_FROM": "+447700900999",
            "BROADCAST_SMTP_HOST": "127.0.0.1",
            "BROADCAST_SMTP_PORT": str(smtp.port),
            "BROADCAST_SMTP_TLS": "none",
            "BROADCAST_EMAIL_FROM": "alerts@example.org",
            "BROADCAST_SMS_RATE": "1000/1s",  # a rate, so the preview asks Redis for capacity
            "BROADCAST_DELIVERY_CHUNK_SIZE": "10",
        }
        yield {"env": env, "broker": broker, "twilio": twilio, "smtp": smtp, "tmp": tmp_path}


def cli(env: dict[str, str], cwd, *args: str) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    full = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    full |= {"BROADCAST_QUIET_HOURS": "off", "BROADCAST_OPERATOR": "pc-1234"}
    full |= {"BROADCAST_SECRET_KEY": TEST_SECRET_KEY}
    full |= env | {"PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def side_by_side(
    env: dict[str, str], cwd: Path, commands: Iterable[list[str]]
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent `broadcast` commands at once: each is a process that takes seconds to
    start, and these only read (or fail to reach Redis)."""
    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda command: cli(env, cwd, *command), commands))


def one_clean_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command's stderr is a single line: no traceback, no password."""
    both = result.stdout + result.stderr
    assert "Traceback" not in both and PASSWORD not in both, both
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_send_with_redis_down_is_saved_then_swept_out_once(outage) -> None:  # type: ignore[no-untyped-def]
    env, broker, tmp = outage["env"], outage["broker"], outage["tmp"]
    twilio, smtp = outage["twilio"], outage["smtp"]
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms", "email")) for _ in range(PEOPLE)])
    # Given Redis is down when the operator sends
    broker.stop()
    sent = cli(env, tmp, *SEND, "--yes")
    # Then the command exits 3 with the id and one line saying the alert is saved
    line = one_clean_line(sent)
    assert sent.returncode == 3, sent.stdout + sent.stderr
    assert sent.stdout.strip().splitlines()[-1] == "alert id: 1"
    assert line.startswith("Alert 1 is saved with its deliveries (email 30, sms 30)"), line
    assert "do not send it again" in line and f"127.0.0.1:{broker.port}" in line, line
    # And the alert is sending with every delivery saved `queued`
    with rt.engine.connect() as conn:
        assert conn.execute(select(Alert.status)).scalars().all() == ["sending"]
        states = conn.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
        assert dict(states.all()) == {"queued": 2 * PEOPLE}
    # And the operator tools say Redis is down in one line, without a traceback
    tools = (["queues"], ["queues", "--watch", "--every", "0.2"], ["queues", "--json"])
    tools += (
        ["failures", "list"],
        ["failures", "requeue", "--yes"],
        ["failures", "purge", "--yes"],
    )
    *shown_by_tools, status, again = side_by_side(
        env, tmp, [*tools, ["alert", "status", "1"], [*SEND, "--yes"]]
    )
    for command, shown in zip(tools, shown_by_tools, strict=True):
        assert shown.returncode == 2, (command, shown.stdout + shown.stderr)
        assert "could not reach the queue (Redis at redis://:***@" in one_clean_line(shown)
    # And `alert status` still shows the saved deliveries, from the database alone
    assert status.returncode == 0 and "Traceback" not in status.stdout + status.stderr
    assert "sms: queued 30" in status.stdout and "leaves out capacity" in status.stdout
    # And sending again is refused by the duplicate guard, naming the saved alert
    assert again.returncode == 1 and "alert 1 (sending; queued 60" in one_clean_line(again)
    # When Redis is back (empty) and the sweep runs
    broker.start()
    report = recovery.sweep(rt, _dispatcher(rt), grace=0)
    assert report.requeued_messages == 2 * PEOPLE // 10, report
    # Then the workers send every message exactly once
    with workers(env, tmp / "workers.log", processes=1, threads=4):
        wait_until(lambda: alerts.alert_status(rt, 1).done, 60, "the alert", tmp / "workers.log")
        assert recovery.sweep(rt, _dispatcher(rt), grace=0).requeued_messages == 0
    sms_to = Counter(r.param("To") for r in twilio.accepted("Messages"))
    emails_to = Counter(m.rcpt_tos[0] for m in smtp.messages)
    assert len(sms_to) == PEOPLE and set(sms_to.values()) == {1}, sms_to.most_common(2)
    assert len(emails_to) == PEOPLE and set(emails_to.values()) == {1}
    assert alerts.get_alert(rt, 1).status == "done"


def test_approve_resume_and_scheduler_with_redis_down_exit_3(outage) -> None:  # type: ignore[no-untyped-def]
    env, broker, tmp = outage["env"], outage["broker"], outage["tmp"]
    env = env | {"BROADCAST_REQUIRE_APPROVAL": "true"}
    rt = runtime(env)
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(5)])
    sms_alert = [*SEND[:4], "--channels", "sms", *SEND[6:], "--yes"]
    # Given an alert awaiting approval and one scheduled seconds ahead (no queue needed
    # for either yet), and then Redis goes down
    pending = cli(env, tmp, *sms_alert)
    assert pending.returncode == 0 and "awaits approval" in pending.stdout, pending.stderr
    due = datetime.now(UTC) + timedelta(seconds=25)  # CLI starts take seconds on a busy box
    at = ["--at", due.isoformat(), "--emergency"]
    scheduled = cli(env, tmp, *sms_alert, *at)
    assert scheduled.returncode == 0 and "scheduled for" in scheduled.stdout, scheduled.stderr
    broker.stop()
    # When a second operator approves the first
    approved = cli(env, tmp, "alert", "approve", "1", "--operator", "insp-1")
    # Then it is released and saved (5 queued SMS), exit 3 and one line
    line = one_clean_line(approved)
    assert approved.returncode == 3 and line.startswith("Alert 1 is saved"), line
    assert approved.stdout.strip().splitlines()[-1] == "alert id: 1"
    assert alerts.delivery_counts(rt, 1) == {"sms": 5}
    assert alerts.get_alert(rt, 1).status == "sending"
    # And resume, with Redis still down, says the same of what is left
    resumed = cli(env, tmp, "alert", "resume", "1")
    assert resumed.returncode == 3, resumed.stdout + resumed.stderr
    assert "what is left is queued and goes out when the queue is back" in one_clean_line(resumed)
    # And the scheduler releases the due alert into the database and says so in one line
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    released = cli(env, tmp, "scheduler", "run", "--once")
    assert released.returncode == 3, released.stdout + released.stderr
    assert one_clean_line(released).startswith("scheduler: could not reach the queue")
    assert alerts.get_alert(rt, 2).status == "sending"
    assert alerts.delivery_counts(rt, 2) == {"sms": 5}


def _dispatcher(rt):  # type: ignore[no-untyped-def]
    from workers.embedded import Backend

    return Backend(rt).dispatcher


def test_database_down_is_one_line_naming_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nobody listens there
    url = f"postgresql+psycopg://broadcast:{PASSWORD}@127.0.0.1:{port}/broadcast"
    commands = (["alert", "list"], ["alert", "status", "1"], [*SEND, "--yes"])
    results = side_by_side({"BROADCAST_DATABASE_URL": url}, tmp_path, commands)
    for command, result in zip(commands, results, strict=True):
        assert result.returncode == 2, (command, result.stdout + result.stderr)
        line = one_clean_line(result)
        assert line.startswith(
            f"Error: could not reach the database at postgresql+psycopg://broadcast:***@"
            f"127.0.0.1:{port}/broadcast: "
        ), line
