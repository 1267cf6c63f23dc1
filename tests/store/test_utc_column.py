"""Timestamp columns come back timezone-aware UTC from SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Engine, func, text
from sqlmodel import Session, select

from broadcast.store.tables import AuditEvent

NOON_UTC = datetime(2026, 3, 29, 12, 0, 0, 123456, tzinfo=UTC)


def test_timestamps_come_back_aware_utc_whatever_went_in(engine: Engine) -> None:
    # Given: the same instant written aware in another zone, aware UTC, and naive (taken as UTC)
    written = [
        NOON_UTC.astimezone(timezone(timedelta(hours=5, minutes=30))),
        NOON_UTC,
        NOON_UTC.replace(tzinfo=None),
    ]
    with Session(engine) as session:
        for when in written:
            session.add(AuditEvent(operator="test", action="utc", occurred_at=when))
        session.commit()

    # When: they are read back through the ORM, a column select and an aggregate
    with Session(engine) as session:
        objects = [e.occurred_at for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # a session in another zone must not change what comes back
            conn.execute(text("SET TIME ZONE 'Asia/Tokyo'"))
        columns = list(conn.execute(select(AuditEvent.occurred_at)).scalars())
        latest = conn.execute(select(func.max(AuditEvent.occurred_at))).scalar()

    # Then: every value is the same instant, aware, in UTC
    for value in [*objects, *columns, latest]:
        assert value == NOON_UTC
        assert value.tzinfo is not None and value.utcoffset() == timedelta(0)


def test_sqlite_keeps_storing_utc_wall_time_without_an_offset(engine: Engine) -> None:
    # Given / When: an aware non-UTC value is written on SQLite
    if engine.dialect.name != "sqlite":
        return
    with Session(engine) as session:
        session.add(
            AuditEvent(operator="test", action="utc", occurred_at=NOON_UTC.astimezone(timezone.min))
        )
        session.commit()

    # Then: the text stored is the UTC wall time, in the format the rows already have
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT occurred_at FROM audit_event")).scalar()
    assert stored == "2026-03-29 12:00:00.123456"
