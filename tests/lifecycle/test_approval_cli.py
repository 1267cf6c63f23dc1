"""Two-person rule through the real CLI (embedded mode, outbox channels)."""

from __future__ import annotations

import json

from broadcast.channels.outbox import read_json_lines
from tests.delivery.factories import Person, add_people
from tests.lifecycle.conftest import VARS

SEND = ["alert", "send", "community-alert", "--all", "--channels", "sms", *VARS, "--yes"]


def outbox(tmp_path) -> list[dict]:  # type: ignore[no-untyped-def]
    path = tmp_path / "outbox" / "sms.jsonl"
    return read_json_lines(path) if path.exists() else []


def test_send_waits_for_a_second_operator(db, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_REQUIRE_APPROVAL", "true")
    add_people(db, [Person() for _ in range(4)])
    # Given pc-1 sends an alert under the two-person rule
    sent = cli(*SEND, "--operator", "pc-1")
    assert sent.exit_code == 0, sent.output
    assert "awaits approval" in sent.output and "GSM-7" in sent.output  # the preview came first
    # Then nothing went out
    assert outbox(tmp_path) == []
    assert "pending-approval" in cli("alert", "list").output
    # When pc-1 tries to approve their own alert, it is refused, clearly
    own = cli("alert", "approve", "1", "--operator", "pc-1")
    assert own.exit_code == 2 and "another operator must" in own.output
    assert outbox(tmp_path) == []
    # When sgt-2 approves it, it goes out
    ok = cli("alert", "approve", "1", "--operator", "sgt-2")
    assert ok.exit_code == 0, ok.output
    assert len(outbox(tmp_path)) == 4
    status = json.loads(cli("alert", "status", "1", "--json").output)
    assert status["status"] == "done"
    log = "\n".join(status["lifecycle"])
    assert "approved by sgt-2" in log
    for step in (
        "draft by pc-1",
        "draft -> pending-approval by pc-1",
        "pending-approval -> sending by sgt-2",
        "sending -> done by delivery engine",
    ):
        assert step in log, log
    # A second approval is refused: it is no longer pending
    again = cli("alert", "approve", "1", "--operator", "sgt-3")
    assert again.exit_code == 2 and "is done" in again.output


def test_reject_and_emergency(db, cli, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_REQUIRE_APPROVAL", "true")
    add_people(db, [Person() for _ in range(3)])
    assert cli(*SEND, "--operator", "pc-1").exit_code == 0
    # Rejection needs a reason and ends the alert for good
    assert cli("alert", "reject", "1", "--operator", "sgt-2").exit_code == 2
    rejected = cli("alert", "reject", "1", "--reason", "wrong area", "--operator", "sgt-2")
    assert rejected.exit_code == 0, rejected.output
    assert cli("alert", "approve", "1", "--operator", "sgt-3").exit_code == 2
    assert outbox(tmp_path) == []
    # --emergency goes out at once, on one operator's say
    urgent = cli(*SEND, "--operator", "pc-1", "--emergency")
    assert urgent.exit_code == 0, urgent.output
    assert len(outbox(tmp_path)) == 3
    listing = cli("alert", "list").output
    assert "EMERGENCY" in listing and "rejected" in listing
    audit = [json.loads(line) for line in cli("audit", "--json").output.splitlines()]
    sends = [e for e in audit if e["action"] == "alert.sent"]
    assert [e["details"]["emergency"] for e in sends] == [False, True]
    assert [e["details"]["state"] for e in sends] == ["pending-approval", "sending"]
    assert any(e["action"] == "alert.rejected" and e["operator"] == "sgt-2" for e in audit)
