"""The suppression list: addresses that must never be messaged again on a channel.

Addresses are kept only as a keyed HMAC of their normalised form, so the list survives erasure
without holding personal data in clear, and a re-import of the same address is still caught.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from broadcast.store.bulk import one_of
from broadcast.store.tables import SuppressedAddress, SuppressionKeying, utcnow

if TYPE_CHECKING:
    from broadcast.settings import Settings

# Suppressions the person caused themselves, so only they may undo: by proving they hold the
# address (a confirmed code or link, a START from the number), never by a sign-up naming it.
OWN_OPT_OUTS = ("unsubscribed", "erased")


class AddressHasher:
    """HMAC-SHA256 under one key, with the key's inner and outer states computed once (RFC 2104).

    An import hashes every address it checks and records: hmac.digest builds its OpenSSL
    context afresh and releases the GIL on every call, which costs several times as much.
    """

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        padded = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))

    def __call__(self, address: str) -> str:
        inner = self._inner.copy()
        inner.update(address.encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def bind_keying(settings: Settings, engine: Engine) -> bytes:
    """Read how this database's hashes are keyed (migration 0010) into `settings`, and return
    the key: hashes made before 0010 without BROADCAST_SUPPRESSION_KEY used the link key."""
    with engine.connect() as connection:
        scheme = connection.execute(select(SuppressionKeying.scheme)).scalar()
    settings._suppression_scheme = scheme or "derived"
    return settings.suppression_secret


@lru_cache(maxsize=8)
def hasher_for(key: bytes) -> AddressHasher:
    return AddressHasher(key)


def address_hash(address: str, key: bytes) -> str:
    """The keyed hash of a normalised address (E.164 number or lower-cased email)."""
    return hasher_for(key)(address)


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


def entry(*, session: Session, channel: str, hashed: str) -> SuppressedAddress | None:
    """The list's entry for (channel, address hash), in the session's force's list."""
    return session.scalars(
        select(SuppressedAddress).where(
            SuppressedAddress.address_hash == hashed, SuppressedAddress.channel == channel
        )
    ).first()


def lift(*, session: Session, channel: str, address: str, key: bytes) -> None:
    """Remove an opt-out suppression when the address's owner has proved they opt in again.

    Bounces and invalid-number reports stay: only the person's own opt-out or erasure is theirs
    to undo.
    """
    row = entry(session=session, channel=channel, hashed=address_hash(address, key))
    if row is not None and row.reason in OWN_OPT_OUTS:
        session.delete(row)


def suppression_reason(*, session: Session, channel: str, address: str, key: bytes) -> str | None:
    row = entry(session=session, channel=channel, hashed=address_hash(address, key))
    return row.reason if row else None


def suppressed_among(
    *, connection: Connection, pairs: Iterable[tuple[str, str]], key: bytes
) -> dict[tuple[str, str], str]:
    """For many (channel, address) pairs at once: the ones suppressed, with their reason."""
    hashed = hasher_for(key)
    by_hash = {(channel, hashed(address)): (channel, address) for channel, address in pairs}
    found = suppressed_hashes(connection=connection, pairs=by_hash)
    return {by_hash[pair]: reason for pair, reason in found.items()}


def suppressed_hashes(
    *, connection: Connection, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """For many (channel, address hash) pairs at once: the ones suppressed, with their reason."""
    wanted = set(pairs)
    hashes = list({hashed for _, hashed in wanted})
    found: dict[tuple[str, str], str] = {}
    columns = (SuppressedAddress.channel, SuppressedAddress.address_hash, SuppressedAddress.reason)
    for start in range(0, len(hashes), 5000):
        chunk = hashes[start : start + 5000]
        statement = select(*columns).where(
            one_of(connection, SuppressedAddress.address_hash, chunk)
        )
        for channel, hashed, reason in connection.execute(statement).all():
            if (channel, hashed) in wanted:
                found[(channel, hashed)] = reason
    return found
