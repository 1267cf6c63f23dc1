"""Test helpers for forces: a shared test database put back to its one default force."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from broadcast.forces import registry
from broadcast.forces.registry import ForceInfo
from broadcast.settings import Settings
from broadcast.store.tenancy import scoped

DEFAULT_FORCE_ROW = (
    "INSERT INTO force (id, code, name, hosts, profile, created_at) "
    "VALUES (1, 'default', NULL, '', '{}', CURRENT_TIMESTAMP)"
)


def reset_forces(conn: Connection) -> None:
    """After the force's tables were emptied: only the default force again, as a fresh
    database has it (migration 0011); the next force added takes id 2."""
    conn.execute(text("TRUNCATE force RESTART IDENTITY CASCADE"))
    conn.execute(text(DEFAULT_FORCE_ROW))
    conn.execute(text("SELECT setval('force_id_seq', 1)"))


def default_force(engine: Engine) -> Engine:
    """`engine` working as the default force, as every command of a single-force install does."""
    return scoped(engine, 1)


def add_sharing_senders(
    engine: Engine, base: Settings, code: str, profile: dict[str, object] | None = None
) -> ForceInfo:
    """A force sending as the platform (its name, senders and address), so that its runtime
    shares the platform runtime's channels (Runtime.for_force): tests record what every force
    sent in one place."""
    shared = {"public_url": base.public_url} | (profile or {})
    return registry.add(engine, base, code, base.force_name, profile=shared)
