"""tests/run's private PostgreSQL: a machine with no server still runs the PostgreSQL tests."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from broadcast.store.engine import create_db_engine, upgrade
from tests.support.postgres_cluster import private_cluster, reachable, reachable_server
from tests.support.servers import free_port, throwaway_postgres_database


def test_private_cluster_serves_the_postgres_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given: the configured URL points at a port where nothing listens
    unused = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/postgres"
    monkeypatch.setenv("BROADCAST_TEST_POSTGRES_URL", unused)
    assert reachable_server([unused]) is None

    # When: tests/run starts its own cluster and points the fixtures at it
    with private_cluster() as url:
        monkeypatch.setenv("BROADCAST_TEST_POSTGRES_URL", url)
        # Then: the suite's throwaway database works there, migrations and all
        with throwaway_postgres_database() as database_url:
            engine = create_db_engine(database_url)
            upgrade(engine)
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM registrant")).scalar() == 0
            engine.dispose()
    # And: the cluster is stopped at the end
    assert not reachable(url)
