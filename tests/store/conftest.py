"""Each store test runs twice: on a fresh SQLite file and on a real PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlmodel import SQLModel

from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from tests.support.forces import default_force, reset_forces

KEY = b"test-suppression-key"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    url = request.getfixturevalue("postgres_url")
    _empty(url)  # other test packages share this database and may leave rows behind
    yield url
    _empty(url)


def _empty(url: str) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        # TRUNCATE fires no row triggers, so the append-only ledger can be emptied between tests.
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        reset_forces(conn)
    engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine = default_force(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings() -> Settings:
    return Settings()
