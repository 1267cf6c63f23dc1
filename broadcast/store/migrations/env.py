"""Alembic environment: the engine is handed in by broadcast.store.engine, not read from an ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import broadcast.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

engine = context.config.attributes["engine"]

# Any fixed 64-bit number, the same in every process: the key of the PostgreSQL advisory lock
# that concurrent upgrades take turns on.
MIGRATION_LOCK_KEY = 0x62726F6164636173  # "broadcas"


def _foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite alters a table by rebuilding it, and dropping the old copy with foreign keys on
    fails while other tables point at it (even deferred). So migrations run with them off, the
    way SQLite's documentation prescribes, and are checked before committing. The pragma only
    takes effect outside a transaction: it runs before the migrations begin one."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def _take_the_migration_lock(connection: Connection, sqlite: bool) -> None:
    """Held until the upgrade's transaction ends, so two processes never migrate at once; the
    revision is read after it, so the second finds the first's work done and does nothing.

    PostgreSQL: a transaction-level advisory lock (released by the commit or rollback; no
    migration runs outside the transaction). SQLite: BEGIN IMMEDIATE takes the write lock at
    once. Without it the driver runs DDL outside any transaction (it begins one only before
    INSERT/UPDATE/DELETE), so two processes could both find the database empty and both
    create the first table. A second process waits the engine's busy timeout (30 s) for it.
    """
    if sqlite:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _foreign_keys(connection, on=False)
    try:
        with connection.begin():
            _take_the_migration_lock(connection, sqlite)
            context.configure(
                connection=connection, target_metadata=SQLModel.metadata, render_as_batch=sqlite
            )
            # What the upgrade started from, read under the lock (`broadcast db upgrade` says it).
            context.config.attributes["found"] = context.get_context().get_current_revision()
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            _foreign_keys(connection, on=True)
