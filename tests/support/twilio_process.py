"""Run the Twilio test server as a separate process, for tests whose worker processes must
reach it, and read what it recorded from its record file."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, RecordedRequest

ROOT = Path(__file__).resolve().parents[2]


class RemoteTwilioServer:
    """Handle on a server process: the same ``fail``/``clear``/``requests``/``violations``."""

    def __init__(self, url: str, record: Path, process: subprocess.Popen[str]) -> None:
        self.url, self.record, self.process = url, record, process
        self.account_sid, self.auth_token = ACCOUNT_SID, AUTH_TOKEN

    def fail(
        self, failure: str, *, to: str | None = None, count: int | None = None, delay: float = 5.0
    ) -> None:
        form = {"failure": failure, "delay": delay}
        form |= {"to": to} if to else {}
        form |= {"count": count} if count is not None else {}
        self._post("/_test/fail", form)

    def clear(self) -> None:
        self._post("/_test/clear", {})

    @property
    def requests(self) -> list[RecordedRequest]:
        if not self.record.exists():
            return []
        lines = self.record.read_text().splitlines()
        return [RecordedRequest(**json.loads(line)) for line in lines if line.strip()]

    def accepted(self, resource: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.resource == resource and r.accepted]

    @property
    def violations(self) -> list[str]:
        with urllib.request.urlopen(self.url + "/_test/violations", timeout=5) as response:
            return json.load(response)["violations"]

    def _post(self, path: str, form: dict[str, object]) -> None:
        data = urllib.parse.urlencode(form).encode()
        with urllib.request.urlopen(self.url + path, data=data, timeout=5) as response:
            response.read()


@contextmanager
def twilio_server_process(record: Path, port: int = 0) -> Iterator[RemoteTwilioServer]:
    """Start ``python -m tests.support.twilio_server`` and stop it afterwards."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.twilio_server",
            "--port",
            str(port),
            "--record",
            str(record),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"the Twilio test server did not start: {line!r}")
        yield RemoteTwilioServer(line.split()[1], record, process)
    finally:
        process.terminate()
        process.wait(10)
