"""`broadcast alert ...` with no Redis: the same actors run in-process and finish the alert."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from broadcast.channels.outbox import read_json_lines
from broadcast.settings import get_settings
from cli import app
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "")
    get_settings.cache_clear()
    from broadcast.store.engine import engine_for

    return default_force(engine_for(get_settings().database_url))


def test_send_embedded_status_list_and_errors(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(areas=["SW1A 1"]) for _ in range(30)] + [Person(areas=["E1"])])
    args = ["alert", "send", "burglary-pattern", "--area", "SW1A", "--channels", "sms,voice"]
    args += ["--var", "area=the Oakfield estate", "--var", "period=this week"]
    # Dry run: a preview with the SMS encoding and segments, and nothing queued
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "GSM-7" in dry.output and "sms 30" in dry.output and "Dry run" in dry.output
    # When sent for real with --yes and --operator
    sent = runner.invoke(app, [*args, "--yes", "--operator", "pc-1234", "--urgent"])
    assert sent.exit_code == 0, sent.output
    # Then the alert finished before the command returned, every message in the outbox once
    sms = read_json_lines(tmp_path / "outbox" / "sms.jsonl")
    assert len(sms) == 30 and len({r["delivery_id"] for r in sms}) == 30
    assert len(read_json_lines(tmp_path / "outbox" / "voice.jsonl")) == 30
    status = json.loads(runner.invoke(app, ["alert", "status", "1", "--json"]).output)
    assert status["status"] == "done" and status["channels"]["sms"] == {"sent": 30}
    listing = runner.invoke(app, ["alert", "list"])
    assert "pc-1234" in listing.output
    # Errors are one line and exit 2
    bad = runner.invoke(app, ["alert", "send", "burglary-pattern", "--all", "--yes"])
    assert bad.exit_code == 2 and "needs area" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(app, ["alert", "status", "99"])
    assert missing.exit_code == 2 and "no alert 99" in missing.output
    # The send and a cancel are in the audit log, with counts and no personal data
    assert runner.invoke(app, ["alert", "cancel", "1", "--operator", "sgt-9"]).exit_code == 0
    lines = runner.invoke(app, ["audit", "--json"]).output.splitlines()
    audit = [json.loads(line) for line in lines]
    assert [(e["action"], e["operator"]) for e in audit] == [
        ("alert.sent", "pc-1234"),
        ("alert.cancelled", "sgt-9"),
    ]
    assert audit[0]["details"]["deliveries"] == {"sms": 30, "voice": 30}
    assert audit[0]["details"]["areas"] == ["SW1A"] and audit[0]["details"]["urgent"] is True


def test_transfer_notice_goes_to_those_imported_from_the_source(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(imported_from="pmb-export.csv", channels=("email",)) for _ in range(3)])
    add_people(db, [Person(channels=("email",))])
    result = runner.invoke(
        app,
        [
            "alert",
            "send",
            "transfer-notice",
            "--source",
            "pmb-export.csv",
            "--channels",
            "email",
            "--yes",
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 3


def test_transfer_notice_accepts_the_path_imported_from(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Given people imported from a file (the import records its name)
    add_people(db, [Person(imported_from="r.csv", channels=("email",)) for _ in range(2)])
    notice = ["alert", "send", "transfer-notice", "--channels", "email", "--yes"]
    # When the notice names the file by the path it was imported from
    result = runner.invoke(app, [*notice, "--source", str(tmp_path / "exports" / "r.csv")])
    # Then it reaches them
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "outbox" / "email").glob("*.eml"))) == 2


def test_an_alert_that_would_reach_nobody_says_so_and_creates_nothing(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(imported_from="r.csv", channels=("email",))])
    notice = ["alert", "send", "transfer-notice", "--channels", "email", "--yes"]
    # When a notice names a source nobody was imported from, or an area nobody follows
    unknown = runner.invoke(app, [*notice, "--source", "other.csv"])
    nobody = runner.invoke(
        app,
        ["alert", "send", "community-alert", "--area", "E9", "--channels", "sms", "--yes"]
        + ["--var", "headline=Road closed", "--var", "message=Avoid it."],
    )
    # Then each says so on one line, exits non-zero, and no alert is created
    assert unknown.exit_code == 2, unknown.output
    assert "would reach nobody: no one imported from 'other.csv'" in unknown.output
    assert "imported from: r.csv" in unknown.output
    assert nobody.exit_code == 2 and "would reach nobody" in nobody.output
    assert "Traceback" not in unknown.output + nobody.output
    with db.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM alert").scalar_one() == 0


def test_a_household_is_called_once_and_the_status_says_so(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    home = "+442079461234"
    add_people(db, [Person(channels=("voice",), landline=home) for _ in range(2)])
    args = ["alert", "send", "community-alert", "--all", "--channels", "voice"]
    args += ["--var", "headline=Road closed", "--var", "message=Avoid it."]
    dry = runner.invoke(app, [*args, "--dry-run"])
    preview = " ".join(dry.output.split())
    assert "voice 2 (1 call: one per number, households share)" in preview, dry.output
    sent = runner.invoke(app, [*args, "--yes"])
    assert sent.exit_code == 0, sent.output
    assert [r["to"] for r in read_json_lines(tmp_path / "outbox" / "voice.jsonl")] == [home]
    status = " ".join(runner.invoke(app, ["alert", "status", "1"]).output.split())
    assert "voice: household 1, sent 1" in status
    assert "household 1 = registrants sharing a number called once" in status
    assert "(those calls: sent 1)" in status


def test_retry_failed_logs_the_operator_who_ran_it(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    from broadcast.alerts import lifecycle
    from broadcast.store.tables import Delivery

    # Given a finished alert, one of whose texts failed for a transient reason
    add_people(db, [Person(channels=("sms",)) for _ in range(2)])
    args = ["alert", "send", "community-alert", "--all", "--channels", "sms", "--yes"]
    args += ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]
    assert runner.invoke(app, args).exit_code == 0
    with db.begin() as conn:
        conn.execute(update(Delivery).where(Delivery.id == 1).values(state="failed"))
    # When an operator retries it
    result = runner.invoke(app, ["alert", "retry-failed", "1", "--operator", "sgt-3"])
    assert result.exit_code == 0, result.output
    # Then the alert's move back to sending is logged as theirs, not "unknown"
    steps = [(s.from_state, s.to_state, s.operator) for s in lifecycle.history(db, 1)]
    assert ("done", "sending", "sgt-3") in steps
