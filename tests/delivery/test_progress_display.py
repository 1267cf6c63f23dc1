"""`alert send --wait` and `alert status --watch`: per-channel progress, run to completion
(embedded mode: no Redis, the same actors in this process, the outbox as provider)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from broadcast.settings import get_settings
from cli import app
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "")
    monkeypatch.setenv("COLUMNS", "100")
    get_settings.cache_clear()
    from broadcast.store.engine import engine_for

    return default_force(engine_for(get_settings().database_url))


def bars(output: str) -> dict[str, tuple[int, int]]:
    """channel -> (done, total) from the last progress line shown for each channel."""
    found = {}
    for channel, done, total in re.findall(r"\b(sms|email|voice)\b[^\n]*?(\d+)/(\d+)", output):
        found[channel] = (int(done), int(total))
    return found


def test_send_wait_shows_progress_per_channel_until_done(db) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(channels=("sms", "email")) for _ in range(25)])
    add_people(db, [Person(channels=("sms",)) for _ in range(5)])
    args = ["alert", "send", "community-alert", "--all", "--channels", "sms,email", "--yes"]
    args += ["--var", "headline=Road closed", "--var", "message=Avoid the high street.", "--wait"]
    # When an alert is sent with --wait and no Redis
    result = runner.invoke(app, args, catch_exceptions=False)
    # Then the command returns when the alert is done, with a bar per channel at its total
    assert result.exit_code == 0, result.output
    assert bars(result.output) == {"sms": (30, 30), "email": (25, 25)}, result.output
    # And `status --watch` on the finished alert shows the same bars and returns at once
    watched = runner.invoke(app, ["alert", "status", "1", "--watch"], catch_exceptions=False)
    assert watched.exit_code == 0, watched.output
    assert bars(watched.output) == {"sms": (30, 30), "email": (25, 25)}, watched.output


def test_watch_without_a_terminal_prints_a_progress_line_every_few_seconds(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given an alert still sending (its deliveries queued, no worker taking them)
    import os
    import subprocess
    import sys
    import threading
    import time

    from broadcast.alerts import approval
    from broadcast.alerts import compose as alerts
    from broadcast.delivery.dispatch import RecordingDispatcher
    from broadcast.delivery.planning import Targeting
    from broadcast.runtime import Runtime
    from tests.delivery.processes import ROOT

    add_people(db, [Person(channels=("email",)) for _ in range(4)])
    rt = Runtime(get_settings(), engine=db)
    alert = alerts.create_alert(
        rt,
        "community-alert",
        {"headline": "Road closed", "message": "Avoid the high street."},
        ("email",),
        Targeting(everyone=True),
        operator="pc-1",
    )
    approval.submit(rt, RecordingDispatcher(), alert, operator=alert.operator)
    env = {k: v for k, v in os.environ.items()} | {"PYTHONPATH": str(ROOT)}
    commands = (["alert", "status", str(alert.id), "--watch"], ["queues", "--watch"])
    # When each is watched with output to a pipe (not a terminal), both at once (each waits
    # seconds between lines, and its process takes seconds to start)
    watched: list[tuple[list[str], subprocess.Popen[str], list[tuple[float, str]]]] = []
    for command in commands:
        watcher = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), *command],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[tuple[float, str]] = []

        def read(pipe=watcher.stdout, seen=lines) -> None:  # type: ignore[no-untyped-def]
            for line in pipe:
                seen.append((time.monotonic(), line))

        threading.Thread(target=read, daemon=True).start()
        watched.append((command, watcher, lines))
    deadline = time.monotonic() + 40  # the process start is slow on a loaded machine
    while any(len(lines) < 2 for *_, lines in watched) and time.monotonic() < deadline:
        time.sleep(0.2)
    for command, watcher, lines in watched:
        watcher.terminate()
        watcher.wait(timeout=10)
        # Then a line came, and another a few seconds later, each with the figures
        assert len(lines) >= 2, (command, lines)
        assert lines[1][0] - lines[0][0] < 8, lines
        first = lines[0][1]
        assert "email 0/4" in first or "email used 0 queued 4" in first, first


def test_watch_in_a_terminal_shows_the_eta_beside_the_bars(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given an alert of 30 emails still queued at 10/1m (no worker taking them)
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from broadcast.alerts import approval
    from broadcast.alerts import compose as alerts
    from broadcast.delivery.dispatch import RecordingDispatcher
    from broadcast.delivery.planning import Targeting
    from broadcast.runtime import Runtime
    from tests.delivery.processes import ROOT

    monkeypatch.setenv("BROADCAST_EMAIL_RATE", "10/1m")
    get_settings.cache_clear()
    add_people(db, [Person(channels=("email",)) for _ in range(30)])
    rt = Runtime(get_settings(), engine=db)
    alert = alerts.create_alert(
        rt,
        "community-alert",
        {"headline": "Road closed", "message": "Avoid the high street."},
        ("email",),
        Targeting(everyone=True),
        operator="pc-1",
    )
    approval.submit(rt, RecordingDispatcher(), alert, operator=alert.operator)
    # When it is watched on a terminal (as far as rich is concerned) and then Ctrl-C
    env = dict(os.environ) | {"PYTHONPATH": str(ROOT), "FORCE_COLOR": "1", "COLUMNS": "160"}
    watcher = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "alert", "status", str(alert.id), "--watch"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    chunks: list[str] = []

    def read(pipe=watcher.stdout) -> None:  # type: ignore[no-untyped-def]
        while piece := pipe.read(1):
            chunks.append(piece)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 40
    while "about" not in "".join(chunks) and time.monotonic() < deadline:
        time.sleep(0.3)
    time.sleep(0.5)
    watcher.send_signal(signal.SIGINT)
    watcher.wait(timeout=20)
    reader.join(timeout=5)
    seen = "".join(chunks)
    # Then the bar carries the channel's ETA (30 emails at 10/m: two more windows, 2 min)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", seen)
    assert re.search(r"email .*0/30 .*30 emails at 10/m: about 2 min", text), text
    assert watcher.returncode == 0, text
