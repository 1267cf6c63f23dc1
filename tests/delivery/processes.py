"""Real worker processes for end-to-end tests: the stock `dramatiq` CLI on the `workers` package."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from broadcast.delivery.dispatch import QUEUES
from tests.support.keys import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[2]


def start_workers(
    env: dict[str, str],
    log: Path,
    *,
    processes: int = 1,
    threads: int = 4,
    queues: tuple[str, ...] = QUEUES,
) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dramatiq", "workers", "--processes", str(processes)]
    command += ["--threads", str(threads), "--queues", *queues]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    # Quiet hours off unless the test sets them: routine calls must not wait for the morning.
    full_env |= {"BROADCAST_QUIET_HOURS": "off", "BROADCAST_SECRET_KEY": TEST_SECRET_KEY}
    full_env |= env | {"PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so a kill takes every child
        )


def stop_workers(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


@contextmanager
def workers(env: dict[str, str], log: Path, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    process = start_workers(env, log, **kwargs)  # type: ignore[arg-type]
    try:
        yield process
    finally:
        stop_workers(process)


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise AssertionError(f"timed out waiting for {what}\n{tail}")
        time.sleep(0.1)
