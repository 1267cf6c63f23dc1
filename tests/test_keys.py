"""The link key: no built-in key, weak keys refused whatever BROADCAST_ENV says, a kept key for an
SQLite installation, and processes that serve or sign links refusing to start without one."""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from broadcast import keys
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings, settings_error
from tests.support.keys import TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parents[1]
WEAK = [
    "x",
    "abc",
    "password",
    "ChangeMe",
    " changeme ",
    "development-only-insecure-key",
    "development-only-insecure-key ",
    "changethis-but-longer",
    "x" * 64,
    "ab" * 40,
    "correcthorsebatterystaplecorrecthorsebatterystaple",
    "0123456789" * 5,
    secrets.token_urlsafe(32)[:30],
    "my-Secret-" + secrets.token_urlsafe(32),
]
STRONG = [TEST_SECRET_KEY, secrets.token_urlsafe(32), secrets.token_hex(32), secrets.token_hex(32)]


@pytest.mark.parametrize("value", WEAK)
def test_weak_keys_are_refused_in_every_environment(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env in ("development", "production"):
        with pytest.raises(ValidationError) as caught:
            Settings(_env_file=None, env=env, secret_key=value)  # type: ignore[arg-type]
        line = settings_error(caught.value)
        assert "\n" not in line
        assert line.startswith("BROADCAST_SECRET_KEY ")
        assert keys.HOW_TO_MAKE_ONE in line


@pytest.mark.parametrize("value", STRONG)
def test_generated_keys_are_accepted(value: str) -> None:
    settings = Settings(_env_file=None, secret_key=f" {value}\n")  # type: ignore[arg-type]
    assert settings.link_key() == value  # whitespace around it is not part of the key
    assert settings.key_source.describe() == "set from the environment (BROADCAST_SECRET_KEY)"


def test_an_sqlite_install_generates_its_key_once_and_keeps_it_private(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no key anywhere (an empty line is no key) and a database file
    monkeypatch.setenv("BROADCAST_SECRET_KEY", "  ")
    database = f"sqlite:///{tmp_path}/data/broadcast.db"
    settings = Settings(_env_file=None, database_url=database)
    path = tmp_path / "data" / "broadcast.db.key"
    assert settings.key_source.describe() == f"not set: generated on first use and kept in {path}"
    # When a link is signed, Then a random key is made, kept next to the database, mode 0600
    first = settings.link_key()
    assert keys.key_problem(first) is None
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # And the next process uses the same key
    again = Settings(_env_file=None, database_url=database)
    assert again.link_key() == first
    assert again.key_source.describe() == f"generated and kept in {path}"
    # And another installation gets another key
    other = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/other.db")
    assert other.link_key() != first


def test_no_key_on_postgresql_or_in_production_is_one_line_saying_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("BROADCAST_SECRET_KEY")
    for settings in (
        Settings(_env_file=None, database_url="postgresql+psycopg://u@db/broadcast"),
        Settings(_env_file=None, env="production", database_url=f"sqlite:///{tmp_path}/b.db"),
    ):
        assert settings.key_source.kind == "missing"
        with pytest.raises(ConfigurationError) as caught:
            settings.link_key()
        assert str(caught.value).startswith("BROADCAST_SECRET_KEY is not set")
        assert keys.HOW_TO_MAKE_ONE in str(caught.value)
    assert not (tmp_path / "b.db.key").exists()


def _without_key(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    return env | {"PYTHONPATH": str(ROOT)} | extra


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        # The Procfile's web process, on PostgreSQL without a key
        (
            ["-m", "uvicorn", "--factory", "broadcast.web.app:create_app_from_env", "--port", "0"],
            {"BROADCAST_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
        ),
        # ... and in production on SQLite, where no key is generated
        (
            ["-m", "uvicorn", "--factory", "broadcast.web.app:create_app_from_env", "--port", "0"],
            {"BROADCAST_ENV": "production"},
        ),
        # ... with a placeholder key in development
        (
            ["-m", "uvicorn", "--factory", "broadcast.web.app:create_app_from_env", "--port", "0"],
            {"BROADCAST_SECRET_KEY": "development-only-insecure-key "},
        ),
        # The sweeper and the scheduler (they sign the links in follow-ups and reminders)
        (
            ["-m", "workers.sweeper"],
            {"BROADCAST_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
        ),
        (["-m", "workers.scheduler"], {"BROADCAST_SECRET_KEY": "changeme"}),
    ],
)
def test_processes_that_serve_or_sign_refuse_to_start_with_one_line(
    command: list[str], extra: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, *command],
        cwd=tmp_path,
        env=_without_key(**extra),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "BROADCAST_SECRET_KEY" in lines[0] and keys.HOW_TO_MAKE_ONE in lines[0]
    assert "Traceback" not in result.stderr


def test_config_says_where_the_key_comes_from(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from typer.testing import CliRunner

    from broadcast.settings import get_settings
    from cli import app

    runner = CliRunner()
    monkeypatch.delenv("BROADCAST_SECRET_KEY")
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path}/c.db")
    get_settings.cache_clear()
    result = runner.invoke(app, ["config"])
    assert f"not set: generated on first use and kept in {tmp_path}/c.db.key" in result.output
    monkeypatch.setenv("BROADCAST_DATABASE_URL", "postgresql+psycopg://u@db/x")
    get_settings.cache_clear()
    result = runner.invoke(app, ["config"])
    assert "missing: BROADCAST_SECRET_KEY is not set" in result.output
