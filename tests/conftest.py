from __future__ import annotations

from collections.abc import Iterator

import pytest

from broadcast.settings import get_settings
from tests.support.keys import TEST_SECRET_KEY
from tests.support.servers import private_redis, throwaway_postgres_database


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """Keep the developer's BROADCAST_* environment and .env out of every test."""
    import os

    for name in list(os.environ):
        if name.startswith("BROADCAST_") and not name.startswith("BROADCAST_TEST_"):
            monkeypatch.delenv(name)
    # Quiet hours would hold routine calls in tests run at night; lifecycle tests set them.
    monkeypatch.setenv("BROADCAST_QUIET_HOURS", "off")
    # No key is built in any more; tests share one (tests that check keys set their own).
    monkeypatch.setenv("BROADCAST_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with private_redis() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database at head, as `broadcast db upgrade` leaves it at a deploy (processes
    on PostgreSQL refuse a schema behind the code rather than migrate it)."""
    from broadcast.store.engine import create_db_engine, upgrade

    with throwaway_postgres_database() as url:
        engine = create_db_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
