"""Migrating on first use says nothing at INFO: workers start without alembic's chatter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from broadcast.db import create_db_engine, current_revision, head_revision, upgrade


def test_first_use_migration_logs_nothing_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Given: a process whose logging is at INFO, as a Dramatiq worker's is
    caplog.set_level(logging.INFO)
    engine = create_db_engine(f"sqlite:///{tmp_path}/fresh.db")

    # When: it migrates an empty database on first use
    upgrade(engine)

    # Then: the schema is at head and alembic logged nothing below WARNING
    assert current_revision(engine) == head_revision()
    chatter = [r for r in caplog.records if r.name.startswith("alembic")]
    assert [r for r in chatter if r.levelno < logging.WARNING] == []
    assert logging.getLogger("alembic").level == logging.NOTSET
    engine.dispose()
