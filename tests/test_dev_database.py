"""Commands say once, on stderr, when they fall back to the development database ./broadcast.db."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

NOTICE = "using the development database ./broadcast.db"


def _broadcast(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
        **kwargs,  # type: ignore[arg-type]
    )


def test_new_development_database_is_announced_once_and_stdout_stays_clean(
    tmp_path: Path,
) -> None:
    # Given: a folder without .env or broadcast.db (the autouse fixture chdirs into tmp_path)
    assert not (tmp_path / "broadcast.db").exists()

    # When: a command with machine-readable output runs there
    first = _broadcast("registrants", "list", "--format", "csv")

    # Then: one line on stderr says which database was created; stdout is only the CSV
    assert first.returncode == 0, first.stderr
    assert first.stderr.splitlines() == [f"{NOTICE} (created now)"]
    assert first.stdout.splitlines() == [
        "id,name,email,mobile,landline,postcode,areas,topics,sms,email_status,voice"
    ]
    assert (tmp_path / "broadcast.db").exists()

    # And: scripts and pipelines are not told again about a database that already existed
    again = _broadcast("registrants", "list", "--format", "json")
    assert again.returncode == 0 and again.stderr == "" and again.stdout.strip() == "[]"


def test_interactive_use_names_the_development_database(tmp_path: Path) -> None:
    _broadcast("db", "upgrade")
    # When: a person runs a command at a terminal
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "alert", "list"],
        stdout=follower,
        stderr=follower,
        env=dict(os.environ) | {"COLUMNS": "100"},
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(60) == 0
    os.close(leader)
    # Then: they are told which database it is, once, without "(created now)"
    text = seen.decode()
    assert text.count(NOTICE) == 1 and "(created now)" not in text


def test_configured_database_is_not_announced(tmp_path: Path) -> None:
    Path(".env").write_text("BROADCAST_DATABASE_URL=sqlite:///chosen.db\n")
    result = _broadcast("registrants", "list", "--format", "csv")
    assert result.returncode == 0 and result.stderr == ""
    assert (tmp_path / "chosen.db").exists() and not (tmp_path / "broadcast.db").exists()
