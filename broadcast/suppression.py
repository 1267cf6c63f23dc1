"""The suppression list: addresses that must never be messaged again on a channel.

Addresses are kept only as a keyed HMAC of their normalised form, so the list survives erasure
without holding personal data in clear, and a re-import of the same address is still caught.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from functools import lru_cache

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from broadcast.bulk import one_of
from broadcast.models import SuppressedAddress, utcnow


@lru_cache(maxsize=32768)
def address_hash(address: str, key: bytes) -> str:
    """The keyed hash of a normalised address (E.164 number or lower-cased email).

    Cached: an import checks each address against the list and then records it in the ledger.
    """
    return hmac.digest(key, address.encode(), "sha256").hex()


def suppress(*, session: Session, channel: str, address: str, reason: str, key: bytes) -> None:
    """Add (channel, address) to the list; suppressing twice keeps the first reason."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(SuppressedAddress).values(
        address_hash=address_hash(address, key),
        channel=channel,
        reason=reason,
        created_at=utcnow(),
    )
    session.execute(statement.on_conflict_do_nothing())


def lift(*, session: Session, channel: str, address: str, key: bytes) -> None:
    """Remove an opt-out suppression when the person themselves opts in again.

    Bounces and invalid-number reports stay: only the person's own opt-out or erasure is theirs
    to undo.
    """
    row = session.get(SuppressedAddress, (address_hash(address, key), channel))
    if row is not None and row.reason in ("unsubscribed", "erased"):
        session.delete(row)


def suppression_reason(*, session: Session, channel: str, address: str, key: bytes) -> str | None:
    row = session.get(SuppressedAddress, (address_hash(address, key), channel))
    return row.reason if row else None


def suppressed_among(
    *, connection: Connection, pairs: Iterable[tuple[str, str]], key: bytes
) -> dict[tuple[str, str], str]:
    """For many (channel, address) pairs at once: the ones suppressed, with their reason."""
    by_hash = {
        (channel, address_hash(address, key)): (channel, address) for channel, address in pairs
    }
    hashes = list({hashed for _, hashed in by_hash})
    found: dict[tuple[str, str], str] = {}
    columns = (SuppressedAddress.channel, SuppressedAddress.address_hash, SuppressedAddress.reason)
    for start in range(0, len(hashes), 5000):
        chunk = hashes[start : start + 5000]
        statement = select(*columns).where(
            one_of(connection, SuppressedAddress.address_hash, chunk)
        )
        for channel, hashed, reason in connection.execute(statement):
            if (channel, hashed) in by_hash:
                found[by_hash[(channel, hashed)]] = reason
    return found
