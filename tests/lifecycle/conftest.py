from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from broadcast.settings import get_settings
from broadcast.store.engine import engine_for
from cli import app
from tests.support.forces import default_force

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch) -> Engine:  # type: ignore[no-untyped-def]
    """A migrated SQLite database for the CLI (embedded mode: no Redis)."""
    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'b.db'}")
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "")
    get_settings.cache_clear()
    return default_force(engine_for(get_settings().database_url))


@pytest.fixture
def cli() -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        get_settings.cache_clear()
        return runner.invoke(app, list(args))

    return invoke


VARS = ["--var", "headline=Road closed", "--var", "message=Avoid the high street."]
