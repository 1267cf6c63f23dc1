"""Migration 0011 (forces) moves an existing single-force database in place: every row becomes
the default force's, nothing is lost, and uniqueness then holds within a force."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import broadcast.store.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from broadcast.forces import registry
from broadcast.settings import Settings
from broadcast.store.engine import alembic_config, current_revision, head_revision, upgrade
from broadcast.store.tenancy import national, scoped

# Every table of a force's data, as the code knows them (each with a force_id column).
TABLES = [t.name for t in SQLModel.metadata.sorted_tables if "force_id" in t.c]
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _fill_at_0010(engine: Engine) -> None:
    """Rows in every table of a force's data, written as the 0010 schema had them."""
    statements = [
        "INSERT INTO registrant (id, public_id, name, email, mobile, language, created_at, "
        "updated_at) VALUES (1, 'p1', 'Jo', 'jo@example.com', '+447911123401', 'en', :now, :now)",
        "INSERT INTO registrant (id, public_id, name, email, mobile, language, created_at, "
        "updated_at) VALUES (2, 'p2', 'Sam', 'sam@example.com', NULL, 'en', :now, :now)",
        "INSERT INTO subscription (registrant_id, channel, status, confirmation_attempts, "
        "updated_at) VALUES (1, 'sms', 'active', 0, :now)",
        "INSERT INTO registrant_area (registrant_id, area) VALUES (1, 'SW1A')",
        "INSERT INTO registrant_topic (registrant_id, topic) VALUES (1, 'fraud')",
        "INSERT INTO consent_ledger (registrant_id, event, channel, source, occurred_at) "
        "VALUES (1, 'imported', 'sms', 'csv-import', :now)",
        "INSERT INTO suppression (address_hash, channel, reason, created_at) "
        "VALUES ('h1', 'sms', 'unsubscribed', :now)",
        "INSERT INTO alert (id, template, variables, channels, areas, topics, everyone, urgent, "
        "operator, status, sms_segments, created_at, expires_at, idempotency_key) VALUES "
        "(1, 'community-alert', '{}', 'sms', '', '', true, false, 'pc', 'completed', 1, :now, "
        ":now, 'key-1')",
        "INSERT INTO delivery (alert_id, registrant_id, channel, state, attempts, units, "
        "created_at) VALUES (1, 1, 'sms', 'sent', 1, 1, :now)",
        "INSERT INTO audit_event (occurred_at, operator, action, details) "
        "VALUES (:now, 'pc', 'alert.send', '{}')",
        "INSERT INTO alert_lifecycle (alert_id, kind, emergency) VALUES (1, 'alert', false)",
        "INSERT INTO alert_transition (alert_id, to_state, operator, occurred_at) "
        "VALUES (1, 'sending', 'pc', :now)",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"now": NOW})


def test_an_existing_database_becomes_the_default_force_with_nothing_lost(
    engine: Engine,
) -> None:
    platform = national(engine)
    # Given a database made by the schema before forces (0010), holding a row in every table
    command.downgrade(alembic_config(platform), "0010")
    _fill_at_0010(platform)
    # When it is upgraded
    upgrade(platform)
    assert current_revision(platform) == head_revision()
    # Then every row is still there, each the default force's
    with platform.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT force_id FROM {table}")).scalars().all()
            assert rows and set(rows) == {1}, table
        assert conn.execute(text("SELECT code FROM force")).scalars().all() == ["default"]
    # And the default force, with an empty profile, is described by the environment as before
    base = Settings(_env_file=None, force_name="Suffolk Constabulary")  # type: ignore[call-arg]
    default = registry.by_code(platform, "default")
    assert default.id == 1 and default.settings(base).force_name == "Suffolk Constabulary"
    # And a second force may hold the same email, mobile, suppression and idempotency key,
    # while within the default force they stay one each
    second = registry.add(platform, base, "essex", "Essex Police")
    assert second.id == 2
    with scoped(platform, second.id).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO registrant (id, force_id, public_id, name, email, mobile, language, "
                "created_at, updated_at) VALUES (3, 2, 'p3', 'Jo', 'jo@example.com', "
                "'+447911123401', 'en', :now, :now)"
            ),
            {"now": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO suppression (force_id, address_hash, channel, reason, created_at) "
                "VALUES (2, 'h1', 'sms', 'unsubscribed', :now)"
            ),
            {"now": NOW},
        )
    with pytest.raises(IntegrityError), scoped(platform, 1).begin() as conn:
        conn.execute(text("UPDATE registrant SET email = 'jo@example.com' WHERE id = 2"))
