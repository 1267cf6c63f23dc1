"""Engine, sessions and schema migrations (Alembic) for SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session

from broadcast.errors import BroadcastError
from broadcast.store import tenancy

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def create_db_engine(url: str) -> Engine:
    """An engine tuned for the dialect: SQLite gets WAL and foreign keys, PostgreSQL a pool;
    both get force scoping (store.tenancy).

    hide_parameters: a failed statement's error text (which reaches logs) never carries the
    bound values, which are names, emails and phone numbers.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            hide_parameters=True,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True
        )
    tenancy.install(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class SchemaBehind(BroadcastError):
    """The database's schema is not the one this code was written for."""


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process, its schema at head.

    An SQLite database (the embedded default, `broadcast demo`, tests) is migrated on first use,
    so the first command works on a fresh machine. A PostgreSQL one is migrated once per deploy
    by `broadcast db upgrade` (the Procfile's `release:`): every other process refuses a schema
    that is not at head (SchemaBehind) rather than racing the others to migrate it.
    """
    engine = create_db_engine(url)
    if migrated_on_first_use(url):
        upgrade(engine)
    else:
        try:
            require_head(engine)
        except SchemaBehind:
            engine.dispose()
            raise
    return engine


def migrated_on_first_use(url: str) -> bool:
    """SQLite databases are; PostgreSQL ones only by `broadcast db upgrade` (engine_for)."""
    return make_url(url).get_backend_name() == "sqlite"


def require_head(engine: Engine) -> None:
    """SchemaBehind, in one line that says what to run, unless the schema is at head."""
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    with _quiet_alembic():
        from alembic.script import ScriptDirectory
        from alembic.util import CommandError

    try:
        if current is not None:
            ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(current)
    except CommandError:
        raise SchemaBehind(
            f"the database schema is at {current}, newer than this code knows ({head}): "
            "deploy the code that matches the database"
        ) from None
    where = f"is at {current}" if current else "has no tables yet"
    raise SchemaBehind(
        f"the database schema {where}, this code needs {head}: run `broadcast db upgrade`"
    )


# What a read takes: the engine (it opens and closes a connection of its own) or, inside an open
# transaction, that transaction's connection (so the read sees its writes and takes no second
# connection from the pool while the first is held).
Bind = Engine | Connection


@contextmanager
def connection_for(bind: Bind) -> Iterator[Connection]:
    """The connection to read on: `bind` itself, or a new one from the engine for this read."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as conn:
            yield conn


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    with _quiet_alembic():
        from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Migrations see every force (no scope, no tenant role: they change the tables themselves).
    config.attributes["engine"] = tenancy.national(engine)
    return config


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """Alembic's INFO lines (plugins, context, each step) at WARNING, unless the app set a level.

    An SQLite database migrates on first use; in a worker whose logging is at INFO that was 14
    lines of alembic chatter at each start. Alembic is imported under it too: its first import logs
    each of its plugins.
    """
    logger = logging.getLogger("alembic")
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


def current_revision(engine: Engine) -> str | None:
    with _quiet_alembic(), tenancy.national(engine).connect() as conn:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply pending migrations; a no-op when the schema is already at head.

    Concurrent upgrades (every process of a first deploy) take turns on a lock that
    migrations/env.py holds around the whole upgrade, and each reads the revision only once it
    holds it, so one migrates and the others find nothing to do. Returns the revision found
    under that lock (None: an empty database).
    """
    if revision == "head":
        current = current_revision(engine)
        if current == head_revision():
            return current
    with _quiet_alembic():
        from alembic import command

        config = alembic_config(engine)
        command.upgrade(config, revision)
    found: str | None = config.attributes.get("found")
    return found
