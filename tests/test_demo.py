"""The README's first command: `broadcast demo` on the embedded default (SQLite, no Redis)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from broadcast.channels.outbox import read_json_lines
from cli import app


def test_demo_imports_notifies_and_alerts_into_the_outbox(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    assert "imported 40 new" in result.output
    assert (tmp_path / "broadcast.db").exists()
    sms = read_json_lines(tmp_path / "outbox" / "sms.jsonl")
    notices = [r for r in sms if "now holds your details" in str(r["body"])]
    alerts = [r for r in sms if "Road closed in SE1" in str(r["body"])]
    # Every sample registrant with SMS got the transfer notice once; SE1 followers the alert
    assert len(notices) == len({r["to"] for r in notices}) > 10
    assert 0 < len(alerts) < len(notices)
    assert all("/manage/" in str(r["body"]) for r in sms)
    assert read_json_lines(tmp_path / "outbox" / "voice.jsonl")
    assert list((tmp_path / "outbox" / "email").glob("*.eml"))
    # And a second, Welsh force beside it: its own registrants, its own bilingual template,
    # its own outbox, its name and its pages' prefix on every message
    welsh = read_json_lines(tmp_path / "outbox" / "dyfed-powys" / "sms.jsonl")
    assert len(welsh) == 12 and len({r["to"] for r in welsh}) == 12
    for message in welsh:
        body = str(message["body"])
        assert body.startswith("Heddlu Dyfed-Powys Police: A483 ar gau")
        assert "A483 closed after a collision" in body and "/f/dyfed-powys/manage/" in body
    assert not any("A483" in str(r["body"]) for r in sms)
    emails = list((tmp_path / "outbox" / "dyfed-powys" / "email").glob("*.eml"))
    assert len(emails) == 6
    assert "Heddlu Dyfed-Powys Police" in emails[0].read_text()
    assert "--force default or --force dyfed-powys" in result.output


def _run_at_a_terminal(args: list[str], columns: int) -> str:
    """Run the CLI on a pseudo-terminal `columns` wide; what it showed, escapes removed."""
    import fcntl
    import os
    import pty
    import re
    import struct
    import subprocess
    import sys
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = dict(os.environ) | {"COLUMNS": str(columns), "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", *args], stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(120) == 0, seen.decode(errors="replace")[-3000:]
    text = seen.decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", text)


def test_demo_reads_at_80_columns_with_whole_links(tmp_path: Path) -> None:
    import re

    # When: the demo runs in a terminal 80 columns wide
    shown = _run_at_a_terminal(["demo"], columns=80)

    # Then: it finishes (no traceback), its table fits and truncates nothing
    assert "Traceback" not in shown
    table = [line for line in shown.splitlines() if line and line[0] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table) and "…" not in shown
    # And: every manage link is printed whole, on a line of its own, as long as the real ones
    sent = {
        len(u)
        for outbox in (tmp_path / "outbox", tmp_path / "outbox" / "dyfed-powys")
        for r in read_json_lines(outbox / "sms.jsonl")
        for u in re.findall(r"http://\S+/manage/\S+", str(r["body"]))
    }
    links = [line.strip() for line in shown.splitlines() if "/manage/" in line]
    assert len(links) >= 3
    assert all(link.startswith("http://") and len(link) in sent for link in links)
