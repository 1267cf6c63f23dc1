"""The same migrations run on SQLite and PostgreSQL, up and back down."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from broadcast.store.engine import alembic_config, current_revision, head_revision, upgrade
from broadcast.store.tenancy import national


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


def test_0006_keeps_every_row_and_lets_a_household_share_a_landline(engine: Engine) -> None:
    # Given a database at 0004 holding registrants with channels, interests, consent and
    # deliveries (the fixture migrated to head; go back to 0004 first)
    command.downgrade(alembic_config(engine), "0004")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    # (rows written as that schema had them: before forces, so as no force)
    with national(engine).begin() as conn:
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO registrant (id, public_id, name, email, mobile, landline, "
                    "language, created_at, updated_at) VALUES (:id, :pid, :name, :email, "
                    ":mobile, :landline, 'en', :now, :now)"
                ),
                {
                    "id": n,
                    "pid": f"{n:032d}",
                    "name": f"Person {n}",
                    "email": f"p{n}@example.com",
                    "mobile": f"+4479111234{n:02d}",
                    "landline": f"+4420794612{n:02d}",
                    "now": now,
                },
            )
            conn.execute(
                text(
                    "INSERT INTO subscription (registrant_id, channel, status, "
                    "confirmation_attempts, updated_at) VALUES (:id, 'voice', 'active', 0, :now)"
                ),
                {"id": n, "now": now},
            )
            conn.execute(
                text("INSERT INTO registrant_topic (registrant_id, topic) VALUES (:id, 'fraud')"),
                {"id": n},
            )
            conn.execute(
                text(
                    "INSERT INTO consent_ledger (registrant_id, event, channel, source, "
                    "occurred_at) VALUES (:id, 'imported', 'voice', 'csv-import', :now)"
                ),
                {"id": n, "now": now},
            )
        conn.execute(
            text(
                "INSERT INTO alert (id, template, variables, channels, areas, topics, everyone, "
                "urgent, operator, status, sms_segments, created_at, expires_at) VALUES "
                "(1, 'community-alert', '{}', 'voice', '', '', true, false, 'pc', 'done', 1, "
                ":now, :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO delivery (alert_id, registrant_id, channel, state, attempts, units, "
                "created_at) VALUES (1, 1, 'voice', 'sent', 1, 1, :now)"
            ),
            {"now": now},
        )
    # When it is upgraded
    upgrade(engine)
    # Then nothing is lost
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        counts = {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("registrant", "subscription", "registrant_topic", "consent_ledger")
        }
        assert counts == {
            "registrant": 2,
            "subscription": 2,
            "registrant_topic": 2,
            "consent_ledger": 2,
        }
        assert conn.execute(text("SELECT landline FROM registrant WHERE id = 2")).scalar_one() == (
            "+442079461202"
        )
        assert conn.execute(text("SELECT call_id FROM delivery")).all() == [(None,)]
    # And a second person may now give the first one's landline, while a mobile stays one
    # person's
    with engine.begin() as conn:
        conn.execute(text("UPDATE registrant SET landline = '+442079461201' WHERE id = 2"))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE registrant SET mobile = '+447911123401' WHERE id = 2"))
    indexes = {i["name"] for i in inspect(engine).get_indexes("registrant")}
    assert "ix_registrant_landline" in indexes
    # And the foreign keys into the rebuilt table still hold
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO registrant_topic (force_id, registrant_id, topic) "
                "VALUES (1, 99, 'fraud')"
            )
        )
