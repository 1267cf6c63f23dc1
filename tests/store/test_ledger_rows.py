"""The bulk ledger-row maker must write exactly what ledger_values writes."""

from __future__ import annotations

from datetime import UTC, datetime

from broadcast.consent import ConsentSource, ledger_row_maker, ledger_values

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CONSENTED = datetime(2006, 5, 1, tzinfo=UTC)


def test_rows_from_the_maker_equal_ledger_values() -> None:
    source = ConsentSource(
        source="csv-import",
        detail="pmb.csv",
        operator="pc-import",
        wording_version="v3",
        lawful_basis="consent (transferred)",
    )
    make = ledger_row_maker(event="imported", source=source, occurred_at=NOW)
    with_origin = ConsentSource(**{**source.__dict__, "origin": "PMB", "consented_at": CONSENTED})
    expected = ledger_values(
        registrant_id=7,
        event="imported",
        channel="sms",
        hashed_address="ab" * 32,
        source=with_origin,
        key=b"unused",
        occurred_at=NOW,
    )
    assert make(7, "sms", "ab" * 32, "PMB", CONSENTED) == expected
