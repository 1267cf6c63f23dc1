"""Writing one batch of validated import rows: creating new registrants, updating existing ones.

Everything is read and written in bulk per batch (a handful of queries, not a handful per row),
because a national transfer is millions of rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, bindparam, literal, or_, select, union_all, update
from sqlalchemy.orm import InstrumentedAttribute

from broadcast.importing.options import ImportOptions
from broadcast.registrants.consent import LEDGER_COLUMNS, ConsentSource, ledger_row_maker
from broadcast.store.bulk import bulk_insert, bulk_insert_returning_ids, one_of, prefer_indexes
from broadcast.store.tables import (
    ConsentEvent,
    ConsentLedgerEntry,
    Registrant,
    RegistrantArea,
    RegistrantTopic,
    Subscription,
    SubscriptionStatus,
    new_public_ids,
    utcnow,
)

if TYPE_CHECKING:
    from broadcast.importing.csv_source import Rejected
    from broadcast.importing.rows import ValidRow

CONTACT_FIELDS = ("email", "mobile", "landline")
PROFILE_FIELDS = ("name", "postcode", *CONTACT_FIELDS)


@dataclass(frozen=True)
class Owner:
    id: int
    name: str | None
    postcode: str | None
    email: str | None
    mobile: str | None
    landline: str | None


def existing_owners(connection: Connection, items: Iterable[ValidRow]) -> dict[str, Owner]:
    """Registrants owning any of these rows' emails or mobiles, keyed by that email or mobile.

    Emails are looked up in the email column, mobiles in the mobile column: those identify a
    person. A landline never matches (a household shares one). The owners' rows stay locked, in
    id order, until the batch commits: on PostgreSQL two batches are written at once, and a
    batch updating a registrant that the batch before it also updates waits for that batch,
    then reads the registrant as it left it.
    """
    emails: set[str] = set()
    mobiles: set[str] = set()
    for item in items:
        if item.email:
            emails.add(item.email)
        if item.mobile:
            mobiles.add(item.mobile)
    owners: dict[str, Owner] = {}
    if not (emails or mobiles):
        return owners
    conditions = [
        one_of(connection, getattr(Registrant, column), list(values))
        for column, values in (("email", emails), ("mobile", mobiles))
        if values
    ]
    statement = (
        select(Registrant.id, *(getattr(Registrant, f) for f in PROFILE_FIELDS))
        .where(or_(*conditions))
        .order_by(Registrant.id)
        .with_for_update(of=Registrant.__table__, key_share=True)
    )
    for row in connection.execute(statement).all():
        owner = Owner(*row)
        if owner.email:
            owners[owner.email] = owner
        if owner.mobile:
            owners[owner.mobile] = owner
    return owners


def _match(item: ValidRow, owners: dict[str, Owner]) -> Owner | str | None:
    """The registrant this row is, or why it cannot be anyone: its email is one registrant's
    and its mobile another's."""
    by_email = owners.get(item.email) if item.email else None
    by_mobile = owners.get(item.mobile) if item.mobile else None
    if by_email is not None and by_mobile is not None and by_email.id != by_mobile.id:
        return (
            f"email matches registrant {by_email.id} and mobile matches registrant "
            f"{by_mobile.id}: they are different people"
        )
    return by_email or by_mobile


IMPORT_SOURCE = "csv-import"
TRANSFERRED = "consent (transferred)"


def _ledger(
    event: str, file_name: str, options: ImportOptions, now: datetime
) -> Callable[..., tuple[Any, ...]]:
    source = ConsentSource(
        source=IMPORT_SOURCE, detail=file_name, operator=options.operator, lawful_basis=TRANSFERRED
    )
    return ledger_row_maker(event=event, source=source, occurred_at=now)


@dataclass
class BatchOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def write_batch(
    connection: Connection, batch: list[ValidRow], file_name: str, options: ImportOptions
) -> BatchOutcome:
    """Create or update the batch's registrants on this connection (the caller commits)."""
    outcome = BatchOutcome()
    prefer_indexes(connection)
    owners = existing_owners(connection, batch)
    new_items: list[ValidRow] = []
    existing: list[tuple[ValidRow, Owner]] = []
    for item in batch:
        match = _match(item, owners)
        if isinstance(match, str):
            outcome.rejected.append((item.row, [match]))
        elif match is not None:
            existing.append((item, match))
        else:
            new_items.append(item)
    _create(connection, new_items, file_name, options, outcome)
    _update(connection, existing, file_name, options, outcome)
    return outcome


REGISTRANT_COLUMNS = (
    "public_id",
    "name",
    "postcode",
    "email",
    "mobile",
    "landline",
    "language",
    "created_at",
    "updated_at",
)
SUBSCRIPTION_COLUMNS = (
    "registrant_id",
    "channel",
    "status",
    "status_reason",
    "confirmed_at",
    "updated_at",
)
COLUMNS = {
    Subscription.__table__: SUBSCRIPTION_COLUMNS,
    ConsentLedgerEntry.__table__: LEDGER_COLUMNS,
    RegistrantArea.__table__: ("registrant_id", "area"),
    RegistrantTopic.__table__: ("registrant_id", "topic"),
}


INTEREST_TABLES: dict[
    str,
    tuple[type[RegistrantArea | RegistrantTopic | Subscription], InstrumentedAttribute[str]],
] = {
    "area": (RegistrantArea, RegistrantArea.area),
    "topic": (RegistrantTopic, RegistrantTopic.topic),
    "channel": (Subscription, Subscription.channel),
}


def _insert_collected(connection: Connection, rows: dict[Table, list[tuple[Any, ...]]]) -> None:
    for table, values in rows.items():
        bulk_insert(connection, table, COLUMNS[table], values)


def _create(
    connection: Connection,
    items: list[ValidRow],
    file_name: str,
    options: ImportOptions,
    outcome: BatchOutcome,
) -> None:
    if not items:
        return
    if options.dry_run:
        # Counted, not inserted: an insert rolled back still spends sequence values (PostgreSQL),
        # so a dry run would move the next registrant id.
        outcome.created += len(items)
        return
    now = utcnow()
    registrants = [
        (public_id, g.name, g.postcode, g.email, g.mobile, g.landline, g.language, now, now)
        for public_id, g in zip(new_public_ids(len(items)), items, strict=True)
    ]
    ids = bulk_insert_returning_ids(
        connection, Registrant.__table__, REGISTRANT_COLUMNS, registrants
    )
    rows: dict[Table, list[tuple[Any, ...]]] = defaultdict(list)
    areas, topics = rows[RegistrantArea.__table__], rows[RegistrantTopic.__table__]
    imported = _ledger(ConsentEvent.IMPORTED.value, file_name, options, now)
    for registrant_id, item in zip(ids, items, strict=True):
        _add_channels(rows, registrant_id, item, item.channels, imported, now)
        areas += [(registrant_id, a) for a in item.areas]
        topics += [(registrant_id, t) for t in item.topics]
    _insert_collected(connection, rows)
    outcome.created += len(items)


ACTIVE = SubscriptionStatus.ACTIVE.value


def _add_channels(
    rows: dict[Table, list[tuple[Any, ...]]],
    registrant_id: int,
    item: ValidRow,
    channels: Iterable[str],
    imported: Callable[..., tuple[Any, ...]],
    now: datetime,
) -> None:
    subscriptions = rows[Subscription.__table__]
    ledger = rows[ConsentLedgerEntry.__table__]
    consented_at, origin, hashes = item.consented_at, item.origin, item.hashes
    for channel in channels:
        subscriptions.append((registrant_id, channel, ACTIVE, None, consented_at or now, now))
        ledger.append(imported(registrant_id, channel, hashes[channel], origin, consented_at))


def _interests(
    connection: Connection, ids: list[int]
) -> tuple[dict[int, set[str]], dict[int, set[str]], dict[int, set[str]]]:
    """The areas, topics and channels these registrants already have (one query)."""
    found: dict[str, dict[int, set[str]]] = {kind: defaultdict(set) for kind in INTEREST_TABLES}
    if ids:
        statement = union_all(
            *(
                select(literal(kind), table.registrant_id, column).where(
                    one_of(connection, table.registrant_id, ids)
                )
                for kind, (table, column) in INTEREST_TABLES.items()
            )
        )
        for kind, registrant_id, value in connection.execute(statement).all():
            found[kind][registrant_id].add(value)
    return found["area"], found["topic"], found["channel"]


def _update(
    connection: Connection,
    pairs: list[tuple[ValidRow, Owner]],
    file_name: str,
    options: ImportOptions,
    outcome: BatchOutcome,
) -> None:
    """Bring existing registrants in line with their rows; never revive an unsubscribed channel
    (its address is suppressed, so such a row was already rejected)."""
    if not pairs:
        return
    areas, topics, channels = _interests(connection, [owner.id for _, owner in pairs])
    now = utcnow()
    imported = _ledger(ConsentEvent.IMPORTED.value, file_name, options, now)
    amended = _ledger(ConsentEvent.AMENDED.value, file_name, options, now)
    rows: dict[Table, list[tuple[Any, ...]]] = defaultdict(list)
    profile_updates = []
    for item, owner in pairs:
        changed = {
            f: getattr(item, f)
            for f in PROFILE_FIELDS
            if getattr(item, f) and getattr(item, f) != getattr(owner, f)
        }
        new_areas = set(item.areas) - areas[owner.id]
        new_topics = set(item.topics) - topics[owner.id]
        new_channels = sorted(set(item.channels) - channels[owner.id])
        if not (changed or new_areas or new_topics or new_channels):
            outcome.unchanged += 1
            continue
        if changed:
            merged = {f: changed.get(f, getattr(owner, f)) for f in PROFILE_FIELDS}
            profile_updates.append({"owner_id": owner.id, **merged, "updated_at": now})
            rows[ConsentLedgerEntry.__table__].append(
                amended(owner.id, None, None, item.origin, item.consented_at)
            )
        rows[RegistrantArea.__table__] += [(owner.id, a) for a in new_areas]
        rows[RegistrantTopic.__table__] += [(owner.id, t) for t in new_topics]
        _add_channels(rows, owner.id, item, new_channels, imported, now)
        outcome.updated += 1
    if options.dry_run:
        return  # counted only, as in _create
    if profile_updates:
        statement = update(Registrant.__table__).where(
            Registrant.__table__.c.id == bindparam("owner_id")
        )
        connection.execute(statement, profile_updates)
    _insert_collected(connection, rows)
