"""Bulk import of a registrant list (the transfer of an existing service's data).

Every row is validated before anything is written. Good rows are written in batches, one
transaction each; a row whose contact points already belong to a registrant updates that
registrant, so an interrupted import can simply be run again.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from broadcast import suppression
from broadcast.csv_source import CsvRow, read_registrant_csv, write_rejects
from broadcast.errors import InvalidInput
from broadcast.import_batch import write_batch
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
    workers: int = 0  # validation processes for large files; 0 validates in this process


@dataclass(frozen=True)
class ValidRow:
    row: CsvRow
    draft: RegistrantDraft
    consented_at: datetime | None
    origin: str | None
    hashes: dict[str, str]  # channel -> keyed hash of its address (suppression and ledger)


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
    rows: Sequence[CsvRow],
    topics: frozenset[str],
    named_areas: frozenset[str],
    region: str,
    key: bytes,
) -> list[ValidRow | tuple[CsvRow, list[str]]]:
    results: list[ValidRow | tuple[CsvRow, list[str]]] = []
    hashed = suppression.hasher_for(key)
    for row in rows:
        problems: list[str] = []
        draft = None
        try:
            draft = parse_registrant(
                row.fields, topics=topics, named_areas=named_areas, region=region
            )
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
            hashes = {c: hashed(a) for c, a in draft.addresses().items()}
            results.append(ValidRow(row, draft, consented_at, origin, hashes))
    return results


# Set in the parent just before the pool forks, so workers read the rows without pickling them.
_FORKED_ROWS: list[CsvRow] = []
_FORKED_ARGS: tuple = ()


def _validate_forked_range(start: int, stop: int) -> list[tuple]:
    """In a worker: validate rows[start:stop]; answer with plain tuples, which pickle fast."""
    answers: list[tuple] = []
    for index, result in enumerate(_validate_chunk(_FORKED_ROWS[start:stop], *_FORKED_ARGS), start):
        if isinstance(result, ValidRow):
            draft = astuple_shallow(result.draft)
            answers.append((index, draft, result.consented_at, result.origin, result.hashes))
        else:
            answers.append((index, result[1]))
    return answers


def astuple_shallow(draft: RegistrantDraft) -> tuple:
    return tuple(getattr(draft, f.name) for f in fields(draft))


def _validated_chunks(
    rows: list[CsvRow], options: ImportOptions
) -> Iterator[list[ValidRow | tuple[CsvRow, list[str]]]]:
    """Validate rows chunk by chunk, in file order. Large files are validated by forked worker
    processes while this process writes earlier chunks: phone and email parsing is CPU-bound."""
    global _FORKED_ROWS, _FORKED_ARGS
    args = (options.topics, options.named_areas, options.region, options.key)
    size = options.batch_size
    bounds = [(i, min(i + size, len(rows))) for i in range(0, len(rows), size)]
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    if options.workers < 1 or len(rows) < PARALLEL_THRESHOLD or not can_fork:
        for start, stop in bounds:
            yield _validate_chunk(rows[start:stop], *args)
        return
    _FORKED_ROWS, _FORKED_ARGS = rows, args
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(options.workers, mp_context=context) as pool:
            starts, stops = zip(*bounds, strict=True)
            for answers in pool.map(_validate_forked_range, starts, stops):
                yield [
                    ValidRow(rows[a[0]], RegistrantDraft(*a[1]), a[2], a[3], a[4])
                    if len(a) == 5
                    else (rows[a[0]], a[1])
                    for a in answers
                ]
    finally:
        _FORKED_ROWS, _FORKED_ARGS = [], ()


def _reject_duplicates_in_file(
    good: list[ValidRow], seen: dict[str, int], report: ImportReport
) -> list[ValidRow]:
    kept = []
    for item in good:
        draft = item.draft
        points = [p for p in (draft.email, draft.mobile, draft.landline) if p]
        earlier = next((seen[p] for p in points if p in seen), None)
        if earlier is not None:
            reason = f"duplicate inside the file (same contact as line {earlier})"
            report.rejected.append((item.row, [reason]))
            continue
        for point in points:
            seen[point] = item.row.line
        kept.append(item)
    return kept


def _reject_suppressed(
    connection: Connection, good: list[ValidRow], report: ImportReport
) -> list[ValidRow]:
    pairs = {pair for item in good for pair in item.hashes.items()}
    blocked = suppression.suppressed_hashes(connection=connection, pairs=pairs)
    if not blocked:
        return good
    kept = []
    for item in good:
        hits = sorted(c for c, h in item.hashes.items() if (c, h) in blocked)
        if hits:
            report.rejected.append((item.row, [f"suppressed address for {', '.join(hits)}"]))
        else:
            kept.append(item)
    return kept


def _write_batch(
    engine: Engine,
    batch: list[ValidRow],
    file_name: str,
    options: ImportOptions,
    report: ImportReport,
) -> None:
    """One transaction (rolled back on a dry run)."""
    with engine.connect() as connection:
        write_batch(connection, batch, file_name, options, report)
        if options.dry_run:
            connection.rollback()
        else:
            connection.commit()


def import_registrants(
    *,
    engine: Engine,
    path: Path,
    options: ImportOptions,
    rejects_path: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate every row and write the good ones batch by batch, one transaction per batch
    (with dry_run, each batch is rolled back). Bad rows never stop the good ones."""
    source_file = read_registrant_csv(path)
    report = ImportReport(
        file=path.name,
        rows=len(source_file.rows),
        ignored_columns=source_file.ignored_columns,
        dry_run=options.dry_run,
    )
    seen: dict[str, int] = {}
    done = 0
    # One writer thread: while it writes batch k (mostly waiting on the database, which frees
    # the GIL), this thread takes in and checks batch k+1. Batches are still written one at a
    # time and in file order, so matching against existing registrants is unchanged.
    with ThreadPoolExecutor(1, thread_name_prefix="import-writer") as writer:
        writing: Future[None] | None = None
        for results in _validated_chunks(source_file.rows, options):
            good: list[ValidRow] = []
            for result in results:
                if isinstance(result, ValidRow):
                    good.append(result)
                else:
                    report.rejected.append(result)
            good = _reject_duplicates_in_file(good, seen, report)
            with engine.connect() as connection:
                good = _reject_suppressed(connection, good, report)
            if writing is not None:
                writing.result()
                if progress:
                    progress(done, report.rows)
            writing = writer.submit(_write_batch, engine, good, path.name, options, report)
            done += len(results)
        if writing is not None:
            writing.result()
            if progress:
                progress(done, report.rows)
    report.rejected.sort(key=lambda item: item[0].line)
    if rejects_path is not None and report.rejected:
        write_rejects(rejects_path, report.rejected)
    return report
