"""`alert resume` reports what it did, in words that fit the command: no zero counts."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from broadcast.delivery.recovery import RecoveryReport
from broadcast.settings import get_settings
from broadcast.store.engine import engine_for
from cli import app
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Engine:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    get_settings.cache_clear()
    return default_force(engine_for(get_settings().database_url))


def test_resume_of_a_finished_alert_says_there_was_nothing_to_recover(db: Engine) -> None:
    # Given: an alert sent and finished in-process
    add_people(db, [Person(areas=["SW1A 1"]) for _ in range(3)])
    args = ["alert", "send", "community-alert", "--area", "SW1A", "--channels", "sms", "--yes"]
    args += ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]
    assert runner.invoke(app, args).exit_code == 0

    # When: an operator resumes it
    resumed = runner.invoke(app, ["alert", "resume", "1"])

    # Then: one plain line, and nothing about sign-ups, which resume never touches
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.strip() == "Alert 1: nothing to recover"


def test_report_names_only_what_happened() -> None:
    report = RecoveryReport(requeued_messages=2, found_at_provider=3, in_doubt=1)
    assert str(report) == (
        "2 chunk messages queued again; interrupted sends: 3 found at the provider (sent), "
        "1 left in doubt"
    )
    assert str(RecoveryReport(expired=4, confirmations_expired=2)) == (
        "4 deliveries expired; 2 unconfirmed sign-ups closed"
    )
