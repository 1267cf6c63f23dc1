from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from tests.delivery.factories import RecordingChannel
from tests.support.forces import default_force, reset_forces


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'broadcast.db'}"
    return clean_postgres(request.getfixturevalue("postgres_url"))


def clean_postgres(url: str) -> str:
    """Migrate the shared test database and empty its tables."""
    engine = create_db_engine(url)
    upgrade(engine)
    with engine.begin() as conn:  # each test starts from empty tables on the shared database
        conn.execute(
            text(
                "TRUNCATE delivery, alert, subscription, registrant_area, registrant_topic, "
                "suppression, consent_ledger, registrant RESTART IDENTITY CASCADE"
            )
        )
        reset_forces(conn)
    engine.dispose()
    return url


@pytest.fixture
def channels() -> dict[str, RecordingChannel]:
    return {name: RecordingChannel(name=name) for name in ("sms", "email", "voice")}


@pytest.fixture
def runtime(database_url: str, channels) -> Iterator[Runtime]:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=database_url, voice_rate=None, delivery_retry_base=0.01, _env_file=None
    )
    engine = create_db_engine(database_url)
    upgrade(engine)
    engine = default_force(engine)
    rt = Runtime(settings, engine=engine, channels=channels)
    yield rt
    engine.dispose()
