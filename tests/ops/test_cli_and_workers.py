"""`broadcast queues --watch` until Ctrl-C, and Dramatiq's Prometheus middleware on a worker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import httpx
from prometheus_client.parser import text_string_to_metric_families

from broadcast.alerts import compose as alerts
from tests.delivery.processes import ROOT, wait_until
from tests.ops.conftest import Ops
from tests.support.keys import TEST_SECRET_KEY
from tests.support.servers import free_port
from workers.embedded import Backend


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


class ScreenReader:
    """Reads a process's stdout as it comes, so a test can wait for what the screen shows."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._chunks: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(65536):  # type: ignore[attr-defined]
            self._chunks.append(chunk)

    def text(self) -> str:
        return strip_ansi(b"".join(self._chunks).decode(errors="replace"))

    def finish(self) -> bytes:
        self._thread.join(timeout=30)
        return b"".join(self._chunks)


def test_queues_watch_refreshes_until_ctrl_c(ops: Ops) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    # A terminal as far as rich is concerned: Live redraws frames only on one.
    env |= {"BROADCAST_SECRET_KEY": TEST_SECRET_KEY} | ops.env
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "120", "FORCE_COLOR": "1"}
    command = [sys.executable, str(ROOT / "cli.py"), "queues", "--watch", "--every", "0.2"]
    process = subprocess.Popen(
        command, cwd=ops.tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    screen = ScreenReader(process)
    # Given the screen is up (however slowly the command starts on a busy machine),
    wait_until(lambda: "Workers" in screen.text(), 60, "the first frame")
    # when work is queued, it shows on a later refresh
    Backend(ops.rt).dispatcher.enqueue(ops.chunks(ops.planned_alert(25)))
    wait_until(lambda: re.search(r"│ sms +│ +3 │", screen.text()) is not None, 30, "the work")
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    assert process.stderr is not None
    err = process.stderr.read()
    out = screen.finish()
    # Then Ctrl-C ends it cleanly, after more than one frame
    assert process.returncode == 0, err
    text = strip_ansi(out.decode())
    assert text.count("Queues") >= 2 and "Workers" in text and "none alive" in text
    # The first frames had nothing on the sms queue, the later ones its 3 messages
    assert re.search(r"│ sms +│ +0 │", text) and re.search(r"│ sms +│ +3 │", text), text


def test_dramatiq_prometheus_middleware_on_a_worker(ops: Ops, tmp_path) -> None:
    port = free_port()
    # Dramatiq reads its exposition host and database directory from these (loopback here).
    ops.env |= {
        "BROADCAST_WORKER_METRICS_PORT": str(port),
        "dramatiq_prom_host": "127.0.0.1",
        "dramatiq_prom_db": str(tmp_path / "prom"),
    }
    alert = ops.planned_alert(5)
    Backend(ops.rt).dispatcher.enqueue(ops.chunks(alert))
    ops.start_workers(("sms",))
    wait_until(lambda: alerts.alert_status(ops.rt, alert.id).done, 20, "sending", ops.log)

    def scraped() -> dict[str, float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text
        except httpx.HTTPError:
            return {}
        return {
            s.name: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.labels.get("actor_name") == "deliver_sms"
        }

    wait_until(lambda: scraped().get("dramatiq_messages_total") == 1, 15, "worker metrics")
    assert scraped()["dramatiq_message_duration_milliseconds_count"] == 1
