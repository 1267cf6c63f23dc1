"""The same migrations run on SQLite and PostgreSQL, up and back down."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, inspect

from broadcast.db import alembic_config, current_revision, head_revision, upgrade


def test_upgrade_downgrade_upgrade(engine: Engine) -> None:
    # Given a database at the newest schema (the fixture migrated it)
    assert current_revision(engine) == head_revision()
    assert "consent_ledger" in inspect(engine).get_table_names()
    # When every migration is undone, Then no table of ours is left
    command.downgrade(alembic_config(engine), "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    # And the schema can be built again
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {
        "registrant",
        "subscription",
        "consent_ledger",
        "suppression",
        "audit_event",
        "alert",
        "delivery",
    } <= set(inspect(engine).get_table_names())
