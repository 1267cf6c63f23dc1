"""Bulk import of a registrant list (the transfer of an existing service's data).

Every row is validated before anything is written. Good rows are written in batches, one
transaction each; a row whose contact points already belong to a registrant updates that
registrant, so an interrupted import can simply be run again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert, or_, select, update
from sqlmodel import Session

from broadcast import suppression
from broadcast.consent import ConsentSource, ledger_row, record_many
from broadcast.csv_source import CsvRow, read_registrant_csv, write_rejects
from broadcast.errors import InvalidInput
from broadcast.models import (
    ConsentEvent,
    ConsentLedgerEntry,
    Registrant,
    RegistrantArea,
    RegistrantTopic,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from broadcast.validation import InvalidRegistrant, RegistrantDraft, parse_registrant

# Below this many rows a process pool costs more to start than it saves.
PARALLEL_THRESHOLD = 20_000


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[CsvRow, list[str]]] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


@dataclass(frozen=True)
class ImportOptions:
    topics: frozenset[str]
    named_areas: frozenset[str]
    region: str
    key: bytes
    operator: str | None
    batch_size: int = 5000
    dry_run: bool = False
    workers: int = 1


@dataclass(frozen=True)
class _GoodRow:
    row: CsvRow
    draft: RegistrantDraft
    consented_at: datetime | None
    origin: str | None


def parse_consented_at(raw: str) -> datetime | None:
    """ISO 8601 date or date-time, or the UK's dd/mm/yyyy; naive values are taken as UTC."""
    text = raw.strip()
    if not text:
        return None
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d/%m/%Y")):
        try:
            value = parse(text)
        except ValueError:
            continue
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    raise InvalidInput(f"consented_at '{raw}' is not a date (use YYYY-MM-DD or DD/MM/YYYY)")


def _validate_chunk(
    rows: Sequence[CsvRow], topics: frozenset[str], named_areas: frozenset[str], region: str
) -> list[_GoodRow | tuple[CsvRow, list[str]]]:
    results: list[_GoodRow | tuple[CsvRow, list[str]]] = []
    for row in rows:
        problems: list[str] = []
        draft = None
        try:
            draft = parse_registrant(row.fields, topics=topics, named_areas=named_areas,
                                     region=region)
        except InvalidRegistrant as exc:
            problems += exc.problems
        consented_at = None
        try:
            consented_at = parse_consented_at(row.fields.get("consented_at", ""))
        except InvalidInput as exc:
            problems.append(str(exc))
        if problems or draft is None:
            results.append((row, problems))
        else:
            origin = row.fields.get("source", "").strip()[:120] or None
            results.append(_GoodRow(row, draft, consented_at, origin))
    return results


def validate_rows(rows: list[CsvRow], options: ImportOptions) -> list[_GoodRow | tuple[CsvRow, list[str]]]:
    """Validate every row; on large files spread the work over processes (phone parsing is CPU)."""
    args = (options.topics, options.named_areas, options.region)
    if options.workers <= 1 or len(rows) < PARALLEL_THRESHOLD:
        return _validate_chunk(rows, *args)
    size = max(2000, len(rows) // (options.workers * 4))
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    with ProcessPoolExecutor(options.workers) as pool:
        parts = pool.map(_validate_chunk, chunks, *[[a] * len(chunks) for a in args])
        return [result for part in parts for result in part]


def _reject_duplicates_in_file(good: list[_GoodRow], report: ImportReport) -> list[_GoodRow]:
    seen: dict[str, int] = {}
    kept = []
    for item in good:
        draft = item.draft
        points = [p for p in (draft.email, draft.mobile, draft.landline) if p]
        earlier = next((seen[p] for p in points if p in seen), None)
        if earlier is not None:
            report.rejected.append((item.row, [f"duplicate inside the file (same contact as line {earlier})"]))
            continue
        for point in points:
            seen[point] = item.row.line
        kept.append(item)
    return kept


def _reject_suppressed(
    session: Session, good: list[_GoodRow], key: bytes, report: ImportReport
) -> list[_GoodRow]:
    pairs = {(c, a) for item in good for c, a in item.draft.addresses().items()}
    blocked = suppression.suppressed_among(session=session, pairs=pairs, key=key)
    if not blocked:
        return good
    kept = []
    for item in good:
        hits = sorted(c for c, a in item.draft.addresses().items() if (c, a) in blocked)
        if hits:
            report.rejected.append((item.row, [f"suppressed address for {', '.join(hits)}"]))
        else:
            kept.append(item)
    return kept


def import_registrants(
    *, engine: Engine, path: Path, options: ImportOptions,
    rejects_path: Path | None = None, progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate the whole file, then write good rows batch by batch (nothing at all if dry-run)."""
    source_file = read_registrant_csv(path)
    report = ImportReport(file=path.name, rows=len(source_file.rows),
                          ignored_columns=source_file.ignored_columns, dry_run=options.dry_run)
    good: list[_GoodRow] = []
    for result in validate_rows(source_file.rows, options):
        if isinstance(result, _GoodRow):
            good.append(result)
        else:
            report.rejected.append(result)
    good = _reject_duplicates_in_file(good, report)
    with Session(engine) as session:
        good = _reject_suppressed(session, good, options.key, report)
    for start in range(0, len(good), options.batch_size):
        batch = good[start : start + options.batch_size]
        with Session(engine) as session:
            _write_batch(session, batch, path.name, options, report)
            if options.dry_run:
                session.rollback()
            else:
                session.commit()
        if progress:
            progress(min(start + len(batch), len(good)), len(good))
    report.rejected.sort(key=lambda item: item[0].line)
    if rejects_path is not None and report.rejected:
        write_rejects(rejects_path, report.rejected)
    return report


@dataclass(frozen=True)
class _Owner:
    id: int
    email: str | None
    mobile: str | None
    landline: str | None


def _existing_owners(session: Session, batch: list[_GoodRow]) -> dict[str, _Owner]:
    emails = [g.draft.email for g in batch if g.draft.email]
    phones = [p for g in batch for p in (g.draft.mobile, g.draft.landline) if p]
    owners: dict[str, _Owner] = {}
    if not emails and not phones:
        return owners
    columns = (Registrant.id, Registrant.email, Registrant.mobile, Registrant.landline)
    statement = select(*columns).where(or_(
        Registrant.email.in_(emails), Registrant.mobile.in_(phones), Registrant.landline.in_(phones)
    ))
    for row in session.connection().execute(statement):
        owner = _Owner(*row)
        for point in (owner.email, owner.mobile, owner.landline):
            if point:
                owners[point] = owner
    return owners


def _write_batch(
    session: Session, batch: list[_GoodRow], file_name: str, options: ImportOptions,
    report: ImportReport,
) -> None:
    owners = _existing_owners(session, batch)
    now = utcnow()
    new_items: list[_GoodRow] = []
    for item in batch:
        draft = item.draft
        matches = {owners[p].id: owners[p] for p in (draft.email, draft.mobile, draft.landline)
                   if p in owners}
        if len(matches) > 1:
            report.rejected.append((item.row, [
                "its contact points belong to different existing registrants "
                f"({', '.join(str(i) for i in sorted(matches))})"]))
        elif matches:
            owner = next(iter(matches.values()))
            registrant = session.get(Registrant, owner.id)
            assert registrant is not None
            _update_existing(session, registrant, item, file_name, options, report)
        else:
            new_items.append(item)
    if not new_items:
        return
    rows = [{
        "name": g.draft.name, "postcode": g.draft.postcode, "email": g.draft.email,
        "mobile": g.draft.mobile, "landline": g.draft.landline, "language": g.draft.language,
        "created_at": now, "updated_at": now,
    } for g in new_items]
    connection = session.connection()
    connection.execute(insert(Registrant.__table__), rows)
    # Ids are read back by contact point: RETURNING with guaranteed order is quadratic in
    # SQLAlchemy's bulk path on SQLite, and every new row has at least one unique contact point.
    owners = _existing_owners(session, new_items)
    ids = [
        owners[next(p for p in (g.draft.email, g.draft.mobile, g.draft.landline) if p)].id
        for g in new_items
    ]
    subscriptions, areas, topics, ledger = [], [], [], []
    for registrant_id, item in zip(ids, new_items, strict=True):
        source = _source(item, file_name, options)
        for channel, address in sorted(item.draft.addresses().items()):
            subscriptions.append({"registrant_id": registrant_id, "channel": channel,
                                  "status": SubscriptionStatus.ACTIVE.value,
                                  "confirmed_at": item.consented_at or now, "updated_at": now})
            ledger.append(ledger_row(registrant_id=registrant_id, event=ConsentEvent.IMPORTED,
                                     channel=channel, address=address, source=source,
                                     key=options.key))
        areas += [{"registrant_id": registrant_id, "area": a} for a in item.draft.areas]
        topics += [{"registrant_id": registrant_id, "topic": t} for t in item.draft.topics]
    for model, values in ((Subscription, subscriptions), (RegistrantArea, areas),
                          (RegistrantTopic, topics), (ConsentLedgerEntry, ledger)):
        if values:
            connection.execute(insert(model.__table__), values)
    report.created += len(new_items)


def _source(item: _GoodRow, file_name: str, options: ImportOptions) -> ConsentSource:
    return ConsentSource(source="csv-import", detail=file_name, operator=options.operator,
                         origin=item.origin, consented_at=item.consented_at,
                         lawful_basis="consent (transferred)")


def _update_existing(
    session: Session, registrant: Registrant, item: _GoodRow, file_name: str,
    options: ImportOptions, report: ImportReport,
) -> None:
    """Bring an existing registrant in line with the row; never revive an unsubscribed channel."""
    from broadcast import registrants

    assert registrant.id is not None
    draft = item.draft
    changed = {f for f in ("name", "postcode", "email", "mobile", "landline")
               if getattr(draft, f) and getattr(draft, f) != getattr(registrant, f)}
    current = registrants.views(session=session, registrants=[registrant])[0]
    if set(draft.areas) - set(current["areas"]):
        changed.add("areas")
    if set(draft.topics) - set(current["topics"]):
        changed.add("topics")
    held = registrants.subscriptions(session=session, registrant_id=registrant.id)
    new_channels = sorted(set(draft.channels) - set(held))
    if not changed and not new_channels:
        report.unchanged += 1
        return
    source = _source(item, file_name, options)
    values = {f: getattr(draft, f) for f in changed if f not in ("areas", "topics")}
    if values:
        session.execute(update(Registrant).where(Registrant.id == registrant.id)
                        .values(**values, updated_at=utcnow()))
    for area in set(draft.areas) - set(current["areas"]):
        session.add(RegistrantArea(registrant_id=registrant.id, area=area))
    for topic in set(draft.topics) - set(current["topics"]):
        session.add(RegistrantTopic(registrant_id=registrant.id, topic=topic))
    ledger = []
    for channel in new_channels:
        session.add(Subscription(registrant_id=registrant.id, channel=channel,
                                 status=SubscriptionStatus.ACTIVE,
                                 confirmed_at=item.consented_at or utcnow()))
        ledger.append(ledger_row(registrant_id=registrant.id, event=ConsentEvent.IMPORTED,
                                 channel=channel, address=draft.address_for(channel),
                                 source=source, key=options.key))
    if changed:
        ledger.append(ledger_row(registrant_id=registrant.id, event=ConsentEvent.AMENDED,
                                 source=source, key=options.key))
    record_many(session=session, rows=ledger)
    report.updated += 1
