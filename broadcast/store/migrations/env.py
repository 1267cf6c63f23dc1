"""Alembic environment: the engine is handed in by broadcast.store.engine, not read from an ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import broadcast.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)

engine = context.config.attributes["engine"]


def _foreign_keys(connection: Connection, on: bool) -> None:
    """SQLite alters a table by rebuilding it, and dropping the old copy with foreign keys on
    fails while other tables point at it (even deferred). So migrations run with them off, the
    way SQLite's documentation prescribes, and are checked before committing. The pragma only
    takes effect outside a transaction: it runs before the migrations begin one."""
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _foreign_keys(connection, on=False)
    try:
        with connection.begin():
            context.configure(
                connection=connection, target_metadata=SQLModel.metadata, render_as_batch=sqlite
            )
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        if sqlite:
            _foreign_keys(connection, on=True)
