"""The registrant commands as a liaison officer types them (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import Engine, select
from sqlmodel import Session
from typer.testing import CliRunner

from broadcast.cli import common
from broadcast.store.tables import AuditEvent
from broadcast.store.tenancy import national
from cli import app
from tests.store.test_import import BAD, GOOD, HEADER, many_rows
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


def _refuse_a_name(engine: Engine, name: str) -> None:
    """A real database error on one row: a trigger that refuses to insert this name."""
    with national(engine).begin() as connection:  # DDL: the tables' owner, not a force
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                "CREATE TRIGGER refuse_name BEFORE INSERT ON registrant "
                f"WHEN NEW.name = '{name}' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END"
            )
            return
        connection.exec_driver_sql(
            "CREATE FUNCTION refuse_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.name = '{name}' THEN RAISE EXCEPTION 'refused by trigger'; END IF; "
            "RETURN NEW; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_name BEFORE INSERT ON registrant "
            "FOR EACH ROW EXECUTE FUNCTION refuse_name()"
        )


def _drop_refusal(engine: Engine) -> None:
    with national(engine).begin() as connection:
        connection.exec_driver_sql(
            "DROP TRIGGER refuse_name"
            + ("" if engine.dialect.name == "sqlite" else " ON registrant")
        )
        if engine.dialect.name != "sqlite":
            connection.exec_driver_sql("DROP FUNCTION refuse_name()")


def _import_events(engine: Engine) -> list[dict]:
    with Session(engine) as session:
        events = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "registrants.imported")
        ).all()
    return [json.loads(e.details) for e in events]


def test_a_database_error_names_line_and_batch_and_is_audited_as_partial(  # type: ignore[no-untyped-def]
    cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 30 rows in batches of 10, and a database that refuses the row on line 25 (batch 3)
    monkeypatch.setenv("BROADCAST_IMPORT_BATCH_SIZE", "10")
    lines = many_rows(30)
    lines[23] = lines[23].replace("Person 23", "Refused Person")
    path = tmp_path / "transfer.csv"
    path.write_text("\n".join([HEADER, *lines]) + "\n")
    _refuse_a_name(engine, "Refused Person")
    # When it is imported
    result = cli("registrants", "import", str(path))
    # Then one clear line names the line and the batch, and what was written is audited
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "line 25, in batch 3 (lines 22-31)" in result.output
    assert "run the same import again" in result.output
    assert _import_events(engine) == [
        {
            "rows": 30,
            "created": 20,
            "updated": 0,
            "unchanged": 0,
            "rejected": 0,
            "partial": True,
            "batch": 3,
        }
    ]
    # And once the cause is gone, running it again finishes the import
    _drop_refusal(engine)
    result = cli("registrants", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 10 new, 0 updated, 20 unchanged" in result.output
    assert _import_events(engine)[-1]["created"] == 10


def test_csv_exports_escape_formulas_and_the_import_reads_its_own_rejects(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    # Given registrants whose names would run as formulas in a spreadsheet, a row rejected
    # for its topic and an email starting with '='
    path = tmp_path / "planted.csv"
    path.write_text(
        "\n".join(
            [
                HEADER,
                '"=HYPERLINK(""http://evil.example"")",hy@example.com,07911 123456,,,sms;email,'
                "SW1A,burglary,,",
                # A leading space, stripped before the formula check (a tab would be refused:
                # text_rules.control_character_problem allows none in a field)
                " =1+1,tab@example.com,,,,email,SW1A,burglary,,",
                "-Dash,dash@example.com,+44 7911 123457,,,sms,SW1A,robbery,,@source",
                "Eq,=cmd@example.com,,,,email,SW1A,burglary,,",
            ]
        )
        + "\n"
    )
    rejects = tmp_path / "rejects.csv"
    result = cli("registrants", "import", str(path), "--rejects", str(rejects))
    assert result.exit_code == 1, result.output
    assert "may not begin with =, +, - or @" in result.output
    # When the registrants are listed as CSV
    listed = list(csv.DictReader(io.StringIO(cli("registrants", "list", "--format", "csv").output)))
    # Then no cell begins with a formula character: a quote comes first
    by_email = {row["email"]: row for row in listed}
    assert by_email["hy@example.com"]["name"] == '\'=HYPERLINK("http://evil.example")'
    assert by_email["hy@example.com"]["mobile"] == "'+447911123456"
    assert by_email["tab@example.com"]["name"] == "'=1+1"
    # And the rejects file is escaped the same way
    rejected = list(csv.DictReader(rejects.open()))
    assert [(r["name"], r["mobile"], r["source"]) for r in rejected] == [
        ("'-Dash", "'+44 7911 123457", "'@source"),
        ("Eq", "", ""),
    ]
    # And once its topic is known, the rejects file imports to the values first given
    fixed = rejects.read_text().replace("robbery", "burglary")
    rejects.write_text(fixed)
    result = cli("registrants", "import", str(rejects))
    assert "imported 1 new" in result.output, result.output
    dash = json.loads(cli("registrants", "list", "--format", "json").output)
    assert {(r["name"], r["mobile"]) for r in dash} >= {("-Dash", "+447911123457")}


def test_import_warns_of_extra_cells_by_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join([HEADER, GOOD[0] + ",x,y", GOOD[1]]) + "\n")
    result = cli("registrants", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "1 row(s) have more cells than the header names" in result.output
    assert "(line 2)" in result.output


def test_import_progress_at_a_terminal_shows_both_stages(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a terminal (checking has no total, writing has one: a "{task.total:,}" column
    # broke on None there)
    terminal = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=terminal, force_terminal=True))
    path = tmp_path / "transfer.csv"
    path.write_text("\n".join([HEADER, *many_rows(30)]) + "\n")
    # When a file is imported
    result = cli("registrants", "import", str(path))
    # Then it is imported, and the bar showed the checking and then the writing of 30 rows
    assert result.exit_code == 0, result.output
    assert "imported 30 new" in result.output
    shown = terminal.getvalue()
    assert "checking transfer.csv" in shown and "writing transfer.csv" in shown
    assert "30/30 rows" in shown
