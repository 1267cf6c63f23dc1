"""The registrant commands as a liaison officer types them (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.store.test_import import BAD, GOOD, HEADER
from tests.support.keys import TEST_SECRET_KEY

runner = CliRunner()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, engine):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", database_url)
    monkeypatch.setenv("BROADCAST_OPERATOR", "pc-cli")

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        from broadcast.settings import get_settings

        get_settings.cache_clear()
        return runner.invoke(app, list(args))

    return invoke


def test_import_exit_codes_and_report(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([HEADER, *GOOD]) + "\n")
    result = cli("registrants", "import", str(clean))
    assert result.exit_code == 0, result.output
    assert "imported 2 new" in result.output

    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([HEADER, *GOOD, *BAD]) + "\n")
    rejects = tmp_path / "rejects.csv"
    result = cli("registrants", "import", str(mixed), "--rejects", str(rejects))
    assert result.exit_code == 1
    assert "2 unchanged; 5 rejected" in result.output
    assert "line 4:" in result.output and rejects.exists()

    result = cli("registrants", "import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "cannot read" in result.output


def test_add_list_json_amend_unsubscribe_export_erase(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "registrants",
        "add",
        "--name",
        "Jo Bloggs",
        "--email",
        "jo@example.com",
        "--mobile",
        "07911 123456",
        "--channels",
        "sms,email",
        "--areas",
        "SW1A",
        "--topics",
        "burglary",
    )
    assert result.exit_code == 0, result.output

    listed = json.loads(cli("registrants", "list", "--format", "json").output)
    assert len(listed) == 1
    jo = listed[0]
    assert {
        "id",
        "name",
        "email",
        "mobile",
        "landline",
        "postcode",
        "areas",
        "topics",
        "channels",
    } <= set(jo)
    assert jo["channels"] == {"email": "active", "sms": "active"}
    assert jo["mobile"] == "+447911123456"

    assert cli("registrants", "amend", "jo@example.com", "--topics", "fraud").exit_code == 0
    assert cli("registrants", "unsubscribe", "07911123456", "--channel", "sms").exit_code == 0
    exported = json.loads(cli("registrants", "export", str(jo["id"])).output)
    assert exported["topics"] == ["fraud"]
    assert exported["subscriptions"]["sms"]["status"] == "unsubscribed"
    assert [e["event"] for e in exported["consent_history"]] == [
        "subscribed",
        "subscribed",
        "amended",
        "unsubscribed",
    ]
    assert exported["consent_history"][0]["operator"] == "pc-cli"

    csv_out = cli("registrants", "list", "--format", "csv", "--channel", "email").output
    assert csv_out.splitlines()[0].startswith("id,name,email")
    assert len(csv_out.splitlines()) == 2

    assert cli("registrants", "erase", "jo@example.com", "--yes").exit_code == 0
    assert json.loads(cli("registrants", "list", "--format", "json").output) == []
    result = cli("registrants", "show", "jo@example.com")
    assert result.exit_code == 2 and "no registrant matches" in result.output


def test_bad_input_is_one_clear_line(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli(
        "registrants", "add", "--name", "X", "--mobile", "020 7946 0123", "--channels", "sms"
    )
    assert result.exit_code == 2
    assert "is not a mobile number" in result.output and "Traceback" not in result.output
    result = cli("registrants", "list", "--format", "xml")
    assert result.exit_code == 2 and "--format must be" in result.output


def test_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from broadcast.settings import get_settings

    monkeypatch.setenv("BROADCAST_OPS_TOKEN", "a-very-real-secret")
    monkeypatch.setenv("BROADCAST_DATABASE_URL", "postgresql+psycopg://u:hunter2@db/broadcast")
    get_settings.cache_clear()
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0
    shown = json.loads(result.output)
    # The key is never shown; where it comes from is
    assert shown["secret_key"] == "set from the environment (BROADCAST_SECRET_KEY)"
    assert shown["ops_token"] == "********"
    assert "hunter2" not in result.output and "a-very-real-secret" not in result.output
    assert TEST_SECRET_KEY not in result.output


def test_production_refuses_a_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from broadcast.settings import get_settings

    monkeypatch.setenv("BROADCAST_ENV", "production")
    monkeypatch.setenv("BROADCAST_SECRET_KEY", "changethis")
    get_settings.cache_clear()
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 2
    assert "BROADCAST_SECRET_KEY" in result.output


def test_operator_actions_are_audited_without_personal_data(cli, tmp_path: Path, engine) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join([HEADER, *GOOD]) + "\n")
    assert cli("registrants", "import", str(clean)).exit_code == 0
    assert cli("registrants", "import", str(clean), "--dry-run").exit_code == 0
    assert cli("registrants", "erase", "amira@example.com", "--yes").exit_code == 0
    result = cli("audit", "--json")
    events = [json.loads(line) for line in result.output.splitlines()]
    assert [e["action"] for e in events] == ["registrants.imported", "registrant.erased"]
    assert events[0]["details"]["created"] == 2 and events[0]["operator"] == "pc-cli"
    assert "amira" not in result.output.lower() and "07911" not in result.output
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    assert cli("audit", "--since", "yesterday").exit_code == 2


def test_import_topic_options(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_TOPICS", "anti-social-behaviour,burglary,fraud")
    path = tmp_path / "transfer.csv"
    rows = [
        "Eve A,eve@example.com,,,SW1A 1AA,email,SW1A,antisocial-behaviour,,PMB",
        "Fay B,fay@example.com,,,SW1A 1AA,email,SW1A,antisocial-behaviour;fraud,,PMB",
        "Gus C,gus@example.com,,,SW1A 1AA,email,SW1A,shoplifting,,PMB",
    ]
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    # By default unknown topics reject their rows, each listed once with a suggestion
    rejected = cli("registrants", "import", str(path), "--dry-run")
    assert rejected.exit_code == 1, rejected.output
    assert (
        "unknown topic 'antisocial-behaviour' in 2 rows (rejected) "
        "(did you mean anti-social-behaviour?)" in rejected.output
    )
    assert rejected.output.count("unknown topic 'antisocial-behaviour'") == 1
    # Mapped and dropped, every row goes in
    mapped = cli(
        "registrants",
        "import",
        str(path),
        "--map-topic",
        "antisocial-behaviour=anti-social-behaviour",
        "--unknown-topics",
        "drop",
    )
    assert mapped.exit_code == 0, mapped.output
    assert "imported 3 new" in mapped.output
    assert "unknown topic 'shoplifting' dropped from 1 row" in mapped.output
    # A mapping onto a topic that is not known, or a bad choice, is one line and exit 2
    bad = cli("registrants", "import", str(path), "--map-topic", "asb=antisocial")
    assert bad.exit_code == 2 and "not a known topic" in bad.output
    bad = cli("registrants", "import", str(path), "--unknown-topics", "ignore")
    assert bad.exit_code == 2 and "use reject or drop" in bad.output
