"""--at: local time (DST-correct) or ISO 8601; past refused; cancel; `broadcast scheduler run`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from broadcast.alerts.scheduling import parse_at
from broadcast.channels.outbox import read_json_lines
from broadcast.errors import InvalidInput
from tests.delivery.factories import Person, add_people
from tests.lifecycle.conftest import VARS

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_parse_at_local_and_iso() -> None:
    winter = parse_at("2026-11-23 07:30", zone=LONDON, now=NOW)
    assert winter.astimezone(UTC) == datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
    summer = parse_at("2026-07-01 07:30", zone=LONDON, now=NOW)
    assert summer.astimezone(UTC) == datetime(2026, 7, 1, 6, 30, tzinfo=UTC)  # BST
    iso = parse_at("2026-07-01T07:30:00+02:00", zone=LONDON, now=NOW)
    assert iso.astimezone(UTC) == datetime(2026, 7, 1, 5, 30, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="in the past"):
        parse_at("2026-02-28 09:00", zone=LONDON, now=NOW)
    with pytest.raises(InvalidInput, match="does not exist"):
        parse_at("2026-03-29 01:30", zone=LONDON, now=NOW)  # clocks go forward at 01:00
    with pytest.raises(InvalidInput, match="YYYY-MM-DD HH:MM"):
        parse_at("tomorrow 7am", zone=LONDON, now=NOW)


def test_schedule_cancel_and_release_by_the_scheduler(db, cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(channels=("sms",)) for _ in range(3)])
    send = ["alert", "send", "community-alert", "--all", "--channels", "sms", *VARS, "--yes"]
    due = datetime.now(UTC) + timedelta(seconds=2)
    # Given one alert scheduled two seconds ahead and one for the morning, then cancelled
    first = cli(*send, "--at", due.isoformat())
    assert first.exit_code == 0 and "scheduled for" in first.output, first.output
    later = (datetime.now(LONDON) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M")
    assert cli(*send, "--at", later).exit_code == 0
    assert cli("alert", "list").output.count("scheduled") == 2
    cancelled = cli("alert", "cancel", "2", "--operator", "sgt-2")
    assert cancelled.exit_code == 0, cancelled.output
    past = cli(*send, "--at", "2020-01-01 09:00")
    assert past.exit_code == 2 and "in the past" in past.output
    # When the scheduler runs before the time, nothing goes
    assert cli("scheduler", "run", "--once").exit_code == 0
    assert not (tmp_path / "outbox" / "sms.jsonl").exists()
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    # When it runs after, the alert is released and (embedded) delivered in that process
    run = cli("scheduler", "run", "--once")
    assert run.exit_code == 0 and "released [1]" in run.output, run.output
    assert len(read_json_lines(tmp_path / "outbox" / "sms.jsonl")) == 3
    status = cli("alert", "status", "1").output
    assert "scheduled -> sending by scheduler" in status and "[done]" in status
    assert "scheduled -> cancelled by sgt-2" in cli("alert", "status", "2").output
