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
