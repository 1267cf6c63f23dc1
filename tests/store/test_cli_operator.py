"""BROADCAST_OPERATOR is a setting like every other: read from .env, shown by `config`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from broadcast.settings import get_settings
from cli import app

runner = CliRunner()


def test_operator_from_dotenv_is_recorded_and_shown(database_url: str, engine) -> None:  # type: ignore[no-untyped-def]
    # Given: the operator and the database only in the working folder's .env
    Path(".env").write_text(
        f"BROADCAST_DATABASE_URL={database_url}\nBROADCAST_OPERATOR=pc-dotenv\n"
    )
    get_settings.cache_clear()

    # When: a registrant is added without --operator
    result = runner.invoke(
        app,
        [
            "registrants",
            "add",
            "--name",
            "Jo Bloggs",
            "--email",
            "jo@example.com",
            "--channels",
            "email",
            "--areas",
            "SW1A",
        ],
    )
    assert result.exit_code == 0, result.output

    # Then: the consent ledger names the operator from .env, and `config` shows it
    exported = json.loads(runner.invoke(app, ["registrants", "export", "jo@example.com"]).output)
    assert exported["consent_history"][0]["operator"] == "pc-dotenv"
    shown = runner.invoke(app, ["config"]).output
    assert any(line.split() == ["BROADCAST_OPERATOR", "pc-dotenv"] for line in shown.splitlines())


def test_operator_help_names_the_setting() -> None:
    result = runner.invoke(app, ["alert", "cancel", "--help"], env={"COLUMNS": "200"})
    assert "BROADCAST_OPERATOR" in result.output
