"""The one timestamp column type: values go in as UTC and come back timezone-aware (UTC).

The columns are `DateTime(timezone=True)` in the database (PostgreSQL `timestamp with time
zone`; SQLite a text column without an offset), so the schema is the one the migrations made.
SQLite hands back naive datetimes for them; PostgreSQL aware ones in the session's time zone.
Through this type both give aware UTC, so no code above the store converts them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from broadcast.clock import aware


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that stores UTC and reads back aware UTC datetimes.

    A naive value bound to it is taken to be UTC already (what SQLite stored all along)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else aware(value).astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else aware(value).astimezone(UTC)
