"""`alert send` twice: the duplicate guard asks (or refuses with --yes) and an idempotency key
sends once, on SQLite and PostgreSQL (embedded: messages land in the outbox, counted there)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from broadcast.alerts import compose as alerts
from broadcast.channels.outbox import read_json_lines
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings, get_settings
from broadcast.store.engine import create_db_engine, upgrade
from broadcast.store.tables import Alert
from cli import app
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

runner = CliRunner()
SEND = ["alert", "send", "community-alert", "--area", "SW1A", "--channels", "sms"]
SEND += ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]
PEOPLE = 4


@pytest.fixture
def db(database_url, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", database_url)
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "")
    get_settings.cache_clear()
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine = default_force(engine)
    add_people(engine, [Person(areas=["SW1A 1"], channels=("sms",)) for _ in range(PEOPLE)])
    yield engine
    engine.dispose()


def sms_sent(tmp_path) -> int:  # type: ignore[no-untyped-def]
    return len(read_json_lines(tmp_path / "outbox" / "sms.jsonl"))


def alert_count(engine) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Alert)).scalar_one())


def test_a_second_send_of_the_same_alert_asks_first(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given an alert was sent a moment ago
    first = runner.invoke(app, [*SEND, "--yes", "--operator", "pc-1"])
    assert first.exit_code == 0 and sms_sent(tmp_path) == PEOPLE, first.output
    # When it is sent again with --yes (the operator re-ran the command after an error)
    again = runner.invoke(app, [*SEND, "--yes"])
    # Then it is refused, naming the earlier alert, its state and who sent it; nothing is sent
    assert again.exit_code == 1, again.output
    assert "not sent: alert 1 (done; sent 4; created" in again.output
    assert "by pc-1) has the same template, variables and recipients" in again.output
    assert "--allow-duplicate" in again.output and "Traceback" not in again.output
    assert alert_count(db) == 1 and sms_sent(tmp_path) == PEOPLE
    # The order of areas, channels or variables does not make it a different alert
    shuffled = ["alert", "send", "community-alert", "--channels", "sms", "--area", "SW1A"]
    shuffled += ["--var", "message=Avoid the high street.", "--var", "headline=Road closed"]
    assert runner.invoke(app, [*shuffled, "--yes"]).exit_code == 1
    # Without --yes it asks; "no" sends nothing, and a dry run only notes it
    declined = runner.invoke(app, SEND, input="n\n")
    assert declined.exit_code == 1 and "Send a second alert anyway?" in declined.output
    dry = runner.invoke(app, [*SEND, "--dry-run"])
    assert dry.exit_code == 0 and "Note: alert 1 (done" in dry.output
    assert alert_count(db) == 1
    # "yes" to both questions sends a second alert, as does --allow-duplicate with --yes
    accepted = runner.invoke(app, SEND, input="y\ny\n")
    assert accepted.exit_code == 0 and "alert id: 2" in accepted.output, accepted.output
    allowed = runner.invoke(app, [*SEND, "--yes", "--allow-duplicate"])
    assert allowed.exit_code == 0 and "alert id: 3" in allowed.output
    assert sms_sent(tmp_path) == 3 * PEOPLE
    # Different variables or targeting are a new alert: no question
    other = [a if a != "headline=Road closed" else "headline=Road open" for a in SEND]
    assert runner.invoke(app, [*other, "--yes"]).exit_code == 0
    sector = [a if a != "SW1A" else "SW1A 1" for a in SEND]  # the same people, other targeting
    assert runner.invoke(app, [*sector, "--yes"]).exit_code == 0
    # And with the window set to 0 the guard is off
    monkeypatch.setenv("BROADCAST_DUPLICATE_SEND_WINDOW", "0m")
    get_settings.cache_clear()
    assert runner.invoke(app, [*SEND, "--yes"]).exit_code == 0
    assert alert_count(db) == 6


def test_the_window_is_a_setting(db, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert runner.invoke(app, [*SEND, "--yes"]).exit_code == 0
    # Given the alert was created 11 minutes ago, past the default window of 10
    with db.begin() as conn:
        [created] = conn.execute(select(Alert.created_at)).scalars().all()
        conn.execute(Alert.__table__.update().values(created_at=created - timedelta(minutes=11)))
    assert runner.invoke(app, [*SEND, "--yes"]).exit_code == 0
    # But a window of 1 h still covers the first two
    monkeypatch.setenv("BROADCAST_DUPLICATE_SEND_WINDOW", "1h")
    get_settings.cache_clear()
    refused = runner.invoke(app, [*SEND, "--yes"])
    assert refused.exit_code == 1 and "alert 2 (done" in refused.output


def test_an_idempotency_key_sends_once(database_url, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    keyed = [*SEND, "--yes", "--idempotency-key", "incident-4711"]
    # Given an alert sent with a key
    first = runner.invoke(app, keyed)
    assert first.exit_code == 0 and first.output.splitlines()[-1] == "alert id: 1"
    # When the same command runs again (even with --allow-duplicate)
    again = runner.invoke(app, [*keyed, "--allow-duplicate"])
    # Then it returns the first alert's id and sends nothing again
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "alert id: 1"
    assert "already used: alert 1 (done; sent 4" in again.output
    assert alert_count(db) == 1 and sms_sent(tmp_path) == PEOPLE
    # The same key for a different alert is an error, not a silent no-op
    other = [a if a != "headline=Road closed" else "headline=Road open" for a in keyed]
    clash = runner.invoke(app, other)
    assert clash.exit_code == 2 and "belongs to alert 1" in clash.output, clash.output
    assert alert_count(db) == 1
    blank = runner.invoke(app, [*SEND, "--yes", "--idempotency-key", " "])
    assert blank.exit_code == 2 and "must be 1 to 200 characters" in blank.output
    # And the key is stored on the alert
    assert alerts.get_alert(_runtime(database_url, db), 1).idempotency_key == "incident-4711"


def test_two_racing_creates_with_one_key_make_one_alert(database_url, db) -> None:  # type: ignore[no-untyped-def]
    from broadcast.cli import send_guard

    rt = _runtime(database_url, db)

    def create(_: int) -> tuple[int | None, bool]:
        alert, created = send_guard.create_once(
            "race-1",
            alerts.create_alert,
            rt,
            "community-alert",
            {"headline": "x", "message": "y"},
            ("sms",),
            Targeting(areas=("SW1A",)),
            operator="t",
            status="draft",
            idempotency_key="race-1",
        )
        return alert.id, created

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(create, range(8)))
    assert len({alert_id for alert_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert alert_count(db) == 1


def _runtime(url: str, engine) -> Runtime:  # type: ignore[no-untyped-def]
    return Runtime(Settings(_env_file=None, database_url=url), engine=engine)


def test_only_alerts_that_go_out_at_the_same_time_are_twins(db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    later = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0).isoformat()
    # Given an alert scheduled for tomorrow
    assert runner.invoke(app, [*SEND, "--yes", "--at", tomorrow]).exit_code == 0
    # Then the same alert for the same time is refused, for another time it is not
    same = runner.invoke(app, [*SEND, "--yes", "--at", tomorrow])
    assert same.exit_code == 1 and "alert 1 (scheduled; no deliveries" in same.output
    assert runner.invoke(app, [*SEND, "--yes", "--at", later]).exit_code == 0
    # And once alert 1 is cancelled before it went out, it is no twin any more
    assert runner.invoke(app, ["alert", "cancel", "1"]).exit_code == 0
    again = runner.invoke(app, [*SEND, "--yes", "--at", tomorrow])
    assert again.exit_code == 0 and "alert id: 3" in again.output, again.output


def test_demo_runs_again_in_the_same_folder(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # An absolute path: engines are cached per URL, and tests/test_demo.py uses the relative one
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'broadcast.db'}")
    get_settings.cache_clear()
    # The demo sends its two alerts again on purpose: the duplicate guard must not stop it
    assert runner.invoke(app, ["demo"]).exit_code == 0
    again = runner.invoke(app, ["demo"])
    assert again.exit_code == 0 and "not sent" not in again.output, again.output
