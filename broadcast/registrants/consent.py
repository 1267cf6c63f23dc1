"""The consent ledger: an append-only record of every change to a registrant's consent.

Rows hold no personal data in clear (the address only as a keyed hash), so erasure never needs to
touch them, and the database refuses UPDATE and DELETE on the table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session

from broadcast.registrants.suppression import address_hash
from broadcast.store.tables import ConsentLedgerEntry, utcnow


@dataclass(frozen=True)
class ConsentSource:
    """Who or what made a change: 'cli', 'web', 'csv-import', 'sms-keyword', 'voice-keypress'."""

    source: str
    detail: str | None = None
    operator: str | None = None
    wording_version: str | None = None
    lawful_basis: str | None = "consent"
    origin: str | None = None
    consented_at: datetime | None = None


LEDGER_COLUMNS = (
    "registrant_id",
    "event",
    "channel",
    "address_hash",
    "source",
    "source_detail",
    "wording_version",
    "lawful_basis",
    "operator",
    "origin",
    "consented_at",
    "occurred_at",
)


def ledger_values(
    *,
    registrant_id: int,
    event: str,
    source: ConsentSource,
    key: bytes,
    channel: str | None = None,
    address: str | None = None,
    occurred_at: datetime | None = None,
) -> tuple[Any, ...]:
    """One ledger row as a tuple in LEDGER_COLUMNS order, for bulk inserts."""
    make = ledger_row_maker(event=event, source=source, occurred_at=occurred_at or utcnow())
    hashed = address_hash(address, key) if address else None
    return make(registrant_id, channel, hashed, source.origin, source.consented_at)


def ledger_row_maker(
    *, event: str, source: ConsentSource, occurred_at: datetime
) -> Callable[[int, str | None, str | None, str | None, datetime | None], tuple[Any, ...]]:
    """A maker of ledger rows (tuples in LEDGER_COLUMNS order) that share an event, a source and
    a time, taking (registrant_id, channel, address hash, origin, consented_at); the source's own
    origin and consented_at are ignored. Bulk writes call it once per row."""
    event = str(event)
    name, detail, wording = source.source, source.detail, source.wording_version
    basis, operator = source.lawful_basis, source.operator

    def make(
        registrant_id: int,
        channel: str | None,
        hashed_address: str | None,
        origin: str | None,
        consented_at: datetime | None,
    ) -> tuple[Any, ...]:
        return (
            registrant_id,
            event,
            channel,
            hashed_address,
            name,
            detail,
            wording,
            basis,
            operator,
            origin,
            consented_at,
            occurred_at,
        )

    return make


def ledger_row(**kwargs: Any) -> dict[str, object]:
    """One ledger row as a dict (see ledger_values for the arguments)."""
    return dict(zip(LEDGER_COLUMNS, ledger_values(**kwargs), strict=True))


def record(
    *,
    session: Session,
    registrant_id: int,
    event: str,
    source: ConsentSource,
    key: bytes,
    channel: str | None = None,
    address: str | None = None,
) -> None:
    record_many(
        session=session,
        rows=[
            ledger_row(
                registrant_id=registrant_id,
                event=event,
                source=source,
                key=key,
                channel=channel,
                address=address,
            )
        ],
    )


def record_many(*, session: Session, rows: Sequence[dict[str, object]]) -> None:
    if rows:
        session.connection().execute(insert(ConsentLedgerEntry.__table__), list(rows))


def history(*, session: Session, registrant_id: int) -> list[ConsentLedgerEntry]:
    statement = (
        select(ConsentLedgerEntry)
        .where(ConsentLedgerEntry.registrant_id == registrant_id)
        .order_by(ConsentLedgerEntry.id)
    )
    return list(session.scalars(statement))
