"""Migrations are one deploy step: `broadcast db upgrade` takes turns on a lock, and on
PostgreSQL every other process refuses a schema behind the code in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from broadcast.store.engine import (
    SchemaBehind,
    alembic_config,
    create_db_engine,
    current_revision,
    engine_for,
    head_revision,
)
from tests.support.keys import TEST_SECRET_KEY
from tests.support.servers import throwaway_postgres_database

ROOT = Path(__file__).resolve().parents[2]
RACERS = 6


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "BROADCAST_DATABASE_URL": database_url,
        "BROADCAST_SECRET_KEY": TEST_SECRET_KEY,
    }


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    with throwaway_postgres_database() as url:
        yield url


def _at(url: str, revision: str) -> None:
    engine = create_db_engine(url)
    command.upgrade(alembic_config(engine), revision)
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_upgrades_of_a_fresh_database_migrate_it_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Given: an empty database, as on a first deploy
    url = (
        request.getfixturevalue("fresh_postgres")
        if backend == "postgresql"
        else f"sqlite:///{tmp_path}/race.db"
    )

    # When: several `broadcast db upgrade` start at the same moment
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "db", "upgrade"],
            env=_env(url),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(RACERS)
    ]
    results = [(racer.wait(timeout=120), *racer.communicate()) for racer in racers]

    # Then: every one succeeds; exactly one found the database empty and migrated it, the others
    # waited their turn and found it at head (no duplicate-object errors)
    assert [code for code, _, _ in results] == [0] * RACERS, [err for _, _, err in results]
    head = head_revision()
    outputs = [out.strip() for _, out, _ in results]
    assert outputs.count(f"schema at {head} (was empty)") == 1, outputs
    assert outputs.count(f"schema at {head} (was {head})") == RACERS - 1, outputs
    engine = create_db_engine(url)
    assert current_revision(engine) == head
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def _one_line_refusal(result: subprocess.CompletedProcess[str], behind: str) -> None:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if behind in line]
    assert len(lines) == 1, result.stderr
    assert "run `broadcast db upgrade`" in lines[0]


@pytest.mark.parametrize(
    "process",
    [
        ["-m", "uvicorn", "--factory", "broadcast.web.app:create_app_from_env", "--port", "0"],
        ["-m", "workers.sweeper", "--once"],
        ["-m", "cli", "registrants", "list"],
        ["-m", "cli", "alert", "list"],
    ],
    ids=["web", "sweeper", "cli-registrants", "cli-alerts"],
)
def test_a_process_on_a_postgresql_schema_behind_the_code_refuses_in_one_line(
    process: list[str], fresh_postgres: str, tmp_path: Path
) -> None:
    # Given: a PostgreSQL database an older release migrated
    _at(fresh_postgres, "0007")

    # When: a process of this release starts on it
    result = subprocess.run(
        [sys.executable, *process],
        env=_env(fresh_postgres),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then: one line says what to run, the exit is non-zero, and the schema is untouched
    _one_line_refusal(result, f"schema is at 0007, this code needs {head_revision()}")
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1
    engine = create_db_engine(fresh_postgres)
    assert current_revision(engine) == "0007"
    engine.dispose()


def test_a_dramatiq_worker_on_a_postgresql_schema_behind_the_code_stops(
    fresh_postgres: str, tmp_path: Path
) -> None:
    # Given: an empty PostgreSQL database (the release step never ran)
    # When: the Procfile's worker command starts on it
    result = subprocess.run(
        [sys.executable, "-m", "dramatiq", "workers", "--queues", "maintenance"]
        + ["--processes", "1", "--threads", "1"],
        env=_env(fresh_postgres),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    # Then: the worker process says so once and the pool stops (Dramatiq adds its own line)
    _one_line_refusal(result, f"schema has no tables yet, this code needs {head_revision()}")
    engine = create_db_engine(fresh_postgres)
    assert current_revision(engine) is None
    engine.dispose()


def test_a_schema_newer_than_the_code_is_named_as_such(fresh_postgres: str) -> None:
    # Given: a database a newer release migrated
    engine = create_db_engine(fresh_postgres)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num varchar(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()

    # When / Then: this release's processes refuse it without advising an upgrade
    with pytest.raises(SchemaBehind, match="at 9999, newer than this code knows"):
        engine_for(fresh_postgres)


def test_an_sqlite_database_behind_the_code_is_migrated_on_first_use(tmp_path: Path) -> None:
    # Given: an SQLite database an older release migrated
    url = f"sqlite:///{tmp_path}/old.db"
    _at(url, "0007")

    # When: this release opens it
    engine = engine_for(url)

    # Then: it is at head, with no deploy step
    assert current_revision(engine) == head_revision()
