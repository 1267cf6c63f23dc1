"""Ledger rows are positional tuples for bulk writes: each value must land in its own column."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcast.registrants.consent import (
    LEDGER_COLUMNS,
    ConsentSource,
    ledger_row_maker,
    ledger_values,
)
from broadcast.registrants.suppression import address_hash

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONSENTED = datetime(2006, 5, 1, tzinfo=UTC)
SOURCE = ConsentSource(
    source="csv-import",
    detail="pmb.csv",
    operator="pc-import",
    wording_version="v3",
    lawful_basis="consent (transferred)",
    origin="PMB",
    consented_at=CONSENTED,
)
EXPECTED = {
    "registrant_id": 7,
    "event": "imported",
    "channel": "sms",
    "address_hash": address_hash("+447911123456", b"key"),
    "source": "csv-import",
    "source_detail": "pmb.csv",
    "wording_version": "v3",
    "lawful_basis": "consent (transferred)",
    "operator": "pc-import",
    "origin": "PMB",
    "consented_at": CONSENTED,
    "occurred_at": NOW,
}


def test_a_row_from_the_bulk_maker_fills_each_column() -> None:
    make = ledger_row_maker(event="imported", source=SOURCE, occurred_at=NOW)
    row = make(7, "sms", address_hash("+447911123456", b"key"), "PMB", CONSENTED)
    assert dict(zip(LEDGER_COLUMNS, row, strict=True)) == EXPECTED


def test_ledger_values_hashes_the_address_and_takes_origin_and_consent_from_the_source() -> None:
    row = ledger_values(
        registrant_id=7,
        event="imported",
        channel="sms",
        address="+447911123456",
        source=SOURCE,
        key=b"key",
        occurred_at=NOW,
    )
    assert dict(zip(LEDGER_COLUMNS, row, strict=True)) == EXPECTED
