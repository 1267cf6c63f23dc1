"""`registrants add` and `amend` refuse control characters with one clear line (exit 2), on
SQLite and PostgreSQL, and store nothing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch, engine):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", database_url)

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        from broadcast.settings import get_settings

        get_settings.cache_clear()
        return runner.invoke(app, list(args))

    return invoke


ADD = ["registrants", "add", "--email", "jo@example.com", "--channels", "email"]


@pytest.mark.parametrize("name", ["Jo\x00Bloggs", "Jo Bloggs\r\nBcc: x@evil.example"])
def test_add_refuses_a_name_with_control_characters(cli, name: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(*ADD, "--name", name)
    assert result.exit_code == 2, result.output
    assert "name contains" in result.output and "plain text on one line" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert json.loads(cli("registrants", "list", "--format", "json").output) == []


@pytest.mark.parametrize("option", ["--name", "--postcode", "--topics"])
def test_amend_refuses_control_characters_in_any_field(cli, option: str) -> None:  # type: ignore[no-untyped-def]
    assert cli(*ADD, "--name", "Jo Bloggs", "--postcode", "SW1A 2AA").exit_code == 0
    result = cli("registrants", "amend", "jo@example.com", option, "SW1A\x1b[2J")
    assert result.exit_code == 2, result.output
    assert "contains a control character (U+001B)" in result.output
    assert "Traceback" not in result.output
    [jo] = json.loads(cli("registrants", "list", "--format", "json").output)
    assert jo["name"] == "Jo Bloggs" and jo["postcode"] == "SW1A 2AA" and jo["topics"] == []
