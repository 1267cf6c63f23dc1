"""A SQLite file, the session's real Redis, and real `dramatiq` worker processes (with the worker
registry) for the operator tests; deliveries go to the outbox (no provider configured)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from broadcast.alerts import compose as alerts
from broadcast.delivery import planning
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.tables import Alert
from tests.delivery.factories import Person, add_people
from tests.delivery.processes import ROOT, stop_workers
from tests.support.keys import TEST_SECRET_KEY

HEARTBEAT_TIMEOUT = 1.5  # seconds: the registry beats every 0.5 s
VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


@dataclass
class Ops:
    env: dict[str, str]
    rt: Runtime
    log: Path
    tmp: Path

    def start_workers(
        self,
        queues: tuple[str, ...],
        threads: int = 2,
        module: str = "workers",
    ) -> subprocess.Popen:
        command = [sys.executable, "-m", "dramatiq", module]
        command += ["--processes", "1", "--threads", str(threads), "--queues", *queues]
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
        env |= {"BROADCAST_SECRET_KEY": TEST_SECRET_KEY} | self.env | {"PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as out:
            return subprocess.Popen(
                command,
                cwd=self.tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The real `broadcast` command line, as an operator runs it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
        env |= {"BROADCAST_SECRET_KEY": TEST_SECRET_KEY} | self.env
        env |= {"PYTHONPATH": str(ROOT), "BROADCAST_OPERATOR": "duty-inspector"}
        return subprocess.run(
            [sys.executable, str(ROOT / "cli.py"), *args],
            cwd=self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def planned_alert(self, people: int, channels: tuple[str, ...] = ("sms",)) -> Alert:
        """An alert with its deliveries planned but no message queued yet."""
        add_people(self.rt.engine, [Person(channels=channels) for _ in range(people)])
        alert = alerts.create_alert(
            self.rt,
            "community-alert",
            VARS,
            channels,
            Targeting(everyone=True),
            operator="t",
            status="sending",  # planned by hand below, as a released alert
        )
        with self.rt.engine.begin() as conn:
            planning.plan_deliveries(conn, alert)
        return alert

    def chunks(self, alert: Alert, channel: str = "sms") -> list:
        dispatcher = RecordingDispatcher()
        with self.rt.engine.connect() as conn:
            planning.enqueue_alert(conn, dispatcher, alert, size=10, channels=(channel,))
        return dispatcher.take()


@pytest.fixture
def ops(redis_url: str, tmp_path: Path) -> Iterator[Ops]:
    redis.Redis.from_url(redis_url).flushall()
    env = {
        "BROADCAST_DATABASE_URL": f"sqlite:///{tmp_path / 'broadcast.db'}",
        "BROADCAST_REDIS_URL": redis_url,
        "BROADCAST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "BROADCAST_DELIVERY_CHUNK_SIZE": "10",
        "BROADCAST_VOICE_RATE": "500/1h",
        "BROADCAST_OPS_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
    }
    values = {k.removeprefix("BROADCAST_").lower(): v for k, v in env.items()}
    rt = Runtime(Settings(_env_file=None, **values))
    started: list[subprocess.Popen] = []
    fixture = Ops(env, rt, tmp_path / "workers.log", tmp_path)
    original = fixture.start_workers

    def tracked(*args, **kwargs):  # type: ignore[no-untyped-def]
        process = original(*args, **kwargs)
        started.append(process)
        return process

    fixture.start_workers = tracked  # type: ignore[method-assign]
    yield fixture
    for process in started:
        stop_workers(process)
    rt.engine.dispose()
