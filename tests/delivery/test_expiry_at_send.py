"""No delivery expires unseen: refused at send when the ETA runs past the expiry, and an alert
that ended with expired deliveries reads as incomplete afterwards."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from broadcast.ops import figures as monitoring_figures
from broadcast.settings import get_settings
from broadcast.store.tables import Alert, Delivery, utcnow
from cli import app
from tests.delivery.factories import Person, add_people
from tests.support.forces import default_force

runner = CliRunner()
ENDS = f"{datetime.now(ZoneInfo('Europe/London')) + timedelta(hours=2):%H:%M}"
SEND = ["alert", "send", "community-alert", "--area", "SW1A", "--channels", "voice"]
SEND += ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]


@pytest.fixture
def db(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    # Quiet hours from an hour ago to two hours ahead (London time): routine calls are held now
    local = datetime.now(ZoneInfo("Europe/London"))
    hours = f"{local - timedelta(hours=1):%H:%M}-{ENDS}"
    monkeypatch.setenv("BROADCAST_QUIET_HOURS", hours)
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "60/1m")
    get_settings.cache_clear()
    from broadcast.store.engine import engine_for

    return default_force(engine_for(get_settings().database_url))


def test_a_routine_alert_held_past_its_expiry_is_refused_then_reads_incomplete(db) -> None:  # type: ignore[no-untyped-def]
    add_people(db, [Person(channels=("voice",)) for _ in range(3)])
    # A dry run says how many would expire and when, in words and in JSON
    dry = runner.invoke(app, [*SEND, "--expires", "3m", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "3 deliveries (voice 3) would expire unsent" in dry.output
    assert "held for quiet hours" in dry.output
    shown = json.loads(runner.invoke(app, [*SEND, "--expires", "3m", "--dry-run", "--json"]).output)
    assert shown["expiring"] == 3 and "would expire unsent" in shown["expiry"]
    assert shown["forecast"]["voice"]["held_for_quiet_hours"] == 3
    # The calls go when the quiet hours end (3 calls fit in one window at 60/m)
    finish = datetime.fromisoformat(shown["forecast"]["voice"]["finish"])
    assert finish.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M") == ENDS
    # --yes alone refuses it (exit 1, one line, nothing created)
    refused = runner.invoke(app, [*SEND, "--expires", "3m", "--yes"])
    assert refused.exit_code == 1 and "--allow-expiry" in refused.output, refused.output
    assert "Traceback" not in refused.output
    assert runner.invoke(app, ["alert", "status", "1"]).exit_code == 2  # no alert 1
    # Answering no at the prompt sends nothing either
    assert runner.invoke(app, [*SEND, "--expires", "3m"], input="n\n").exit_code == 1
    # A long enough expiry passes without a word; an urgent alert is not held
    ok = runner.invoke(app, [*SEND, "--expires", "6h", "--dry-run"])
    assert "would expire" not in ok.output
    urgent = runner.invoke(app, [*SEND, "--expires", "3m", "--dry-run", "--urgent"])
    assert "would expire" not in urgent.output
    # With --allow-expiry it goes (the calls stay held)
    sent = runner.invoke(app, [*SEND, "--expires", "3m", "--yes", "--allow-expiry"])
    assert sent.exit_code == 0, sent.output
    # While it sends, its status says the held calls would expire
    assert (
        "3 deliveries (voice 3) would expire unsent"
        in runner.invoke(app, ["alert", "status", "1"]).output
    )
    # When the sweeper expires the held calls (as it would at 3 min) and the alert ends
    with db.begin() as conn:
        conn.execute(update(Delivery).values(state="expired", error_text="alert expired"))
        conn.execute(update(Alert).values(status="done", finished_at=utcnow()))
    # Then list, status and failures say so instead of a bare "done"
    listing = runner.invoke(app, ["alert", "list"]).output
    assert "done, 3 expired" in listing, listing
    status = runner.invoke(app, ["alert", "status", "1"]).output
    assert "[done, 3 expired]" in status, status
    data = json.loads(runner.invoke(app, ["alert", "status", "1", "--json"]).output)
    assert data["outcome"] == "done, 3 expired" and data["unreached"] == {"expired": 3}
    failures = runner.invoke(app, ["failures", "list"]).output
    assert "expired" in failures and "alert expired" in failures, failures
    # /ops (and /metrics) read the same figures: incomplete, and nothing reached
    live = monitoring_figures.live_alerts(db)[0]
    assert live["outcome"] == "done, 3 expired"
    assert live["channels"]["voice"] | {"unreached": None} == {
        "done": 3,
        "total": 3,
        "failed": 3,
        "reached": 0,
        "unreached": None,
    }
