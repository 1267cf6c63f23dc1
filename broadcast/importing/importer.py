"""Bulk import of a registrant list (the transfer of an existing service's data).

Two passes. The first reads the whole file as a stream and checks every byte and every row
(encoding, size limits, control characters, validation, duplicates, the suppression list) before
anything is written; the rows to write go to a temporary spool file, so memory stays flat in the
file's size (but for the file's emails and mobiles, kept for the duplicate check). The second
writes the spooled rows in batches, one transaction each; a row whose email or mobile already
belongs to a registrant updates that registrant, so an import that a database error stopped
part-way can simply be run again. A landline may be shared by a household: it never matches one
person to another.
"""

from __future__ import annotations

import gc
import marshal
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from broadcast.errors import BroadcastError
from broadcast.importing.batch import BatchOutcome, write_batch
from broadcast.importing.csv_source import (
    CsvRow,
    RegistrantCsv,
    Rejected,
    read_registrant_csv,
    write_rejects,
)
from broadcast.importing.options import ImportOptions
from broadcast.importing.rows import (
    RowRules,
    ValidRow,
    checked_chunks,
    count_unknown_topics,
    is_rejection,
    valid_row,
)
from broadcast.registrants import suppression
from broadcast.store.bulk import prefer_indexes, refresh_statistics


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    # Topics not the force's: rows per topic (rejected, or dropped from the rows).
    unknown_topics: Counter[str] = field(default_factory=Counter)
    # Rows with cells beyond the header's columns (ignored): how many, and the first lines.
    extra_cell_rows: int = 0
    extra_cell_lines: list[int] = field(default_factory=list)
    batches_written: int = 0

    @property
    def accepted(self) -> int:
        return self.rows - len(self.rejected)


class ImportInterrupted(BroadcastError):
    """A database error stopped the writing part-way. Batches written before it stay written
    (`report` counts them); running the same import again finishes it."""

    def __init__(self, message: str, *, report: ImportReport, batch: int, lines: str) -> None:
        super().__init__(message)
        self.report = report
        self.batch = batch
        self.lines = lines


def _reject_duplicates_in_file(
    good: list[ValidRow], seen: dict[str, int], report: ImportReport
) -> list[ValidRow]:
    """The first row with an email or mobile wins; a later row with either is rejected, naming
    the field. Landlines are not compared: a household shares one."""
    kept = []
    for item in good:
        points = item.identity_points()
        earlier = next(((f, seen[p]) for f, p in points if p in seen), None)
        if earlier is not None:
            reason = f"duplicate inside the file (same {earlier[0]} as line {earlier[1]})"
            report.rejected.append((item.row, [reason]))
            continue
        for _, point in points:
            seen[point] = item.row.line
        kept.append(item)
    return kept


def _reject_suppressed(
    connection: Connection, good: list[ValidRow], report: ImportReport
) -> list[ValidRow]:
    pairs = {pair for item in good for pair in item.hashes.items()}
    prefer_indexes(connection)
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


# Attempts at a batch whose insert lost a race for a contact point (see _write_batch).
UNIQUE_RACE_ATTEMPTS = 3


def _write_batch(
    engine: Engine, batch: list[ValidRow], file_name: str, options: ImportOptions
) -> BatchOutcome:
    """One transaction (rolled back on a dry run). If someone else took one of the batch's
    contact points between its lookup and its insert (a sign-up on the web while a transfer
    runs), the unique key refuses the insert: the batch is then looked up and written again,
    and the row updates that registrant instead."""
    attempt = 1
    while True:
        with engine.connect() as connection:
            try:
                outcome = write_batch(connection, batch, file_name, options)
            except IntegrityError:
                connection.rollback()
                if attempt == UNIQUE_RACE_ATTEMPTS:
                    raise
                attempt += 1
                continue
            if options.dry_run:
                connection.rollback()
            else:
                connection.commit()
            return outcome


# A large import refreshes the planner's statistics for the tables it filled.
ANALYZE_AFTER_ROWS = 10_000
IMPORTED_TABLES = ("registrant", "subscription", "registrant_area", "registrant_topic")


# Rows validated per worker task: small enough that writing starts soon after the import does.
VALIDATION_CHUNK = 5000


def batches_in_flight(engine: Engine) -> int:
    """PostgreSQL checks keys and foreign keys and updates indexes for one batch while it takes
    in the next; SQLite has one writer at a time."""
    return 2 if engine.dialect.name == "postgresql" else 1


def import_registrants(
    *,
    engine: Engine,
    path: Path,
    options: ImportOptions,
    rejects_path: Path | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
) -> ImportReport:
    """Check every row, then write the good ones batch by batch, one transaction per batch
    (a dry run writes nothing). Bad rows never stop the good ones. progress is called with
    ("checking", rows read, None), then ("writing", rows written, rows to write).

    Raises InvalidInput, before anything is written, if the file is unusable, and
    ImportInterrupted if a database error stops the writing part-way."""
    with _cycle_collector_paused():
        return _import(engine, path, options, rejects_path, progress)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """An import makes millions of short-lived objects and keeps many alive for a while (chunks
    in flight, the file's emails and mobiles); Python's cycle collector would walk the live ones
    again and again (measured: about 40% of the importing process's CPU time), and in the forked
    validators that walk also copies the parent's memory pages. What an import makes is freed by
    reference counting; the collector is back on when it ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import(
    engine: Engine,
    path: Path,
    options: ImportOptions,
    rejects_path: Path | None,
    progress: Callable[[str, int, int | None], None] | None,
) -> ImportReport:
    source_file = read_registrant_csv(path)
    report = ImportReport(
        file=path.name, ignored_columns=source_file.ignored_columns, dry_run=options.dry_run
    )
    with tempfile.TemporaryFile(prefix="broadcast-import-") as spool:
        _check_whole_file(engine, source_file, options, report, spool, progress)
        spool.seek(0)
        try:
            _write_spooled(engine, spool, source_file.columns, path.name, options, report, progress)
        finally:
            _finish_report(report, rejects_path)
    if not options.dry_run and report.created + report.updated >= ANALYZE_AFTER_ROWS:
        # The transfer notice and the first alerts follow at once: a targeted plan over 100,000
        # imported registrants took 0.46 s without statistics, 0.06 s with them.
        with engine.begin() as connection:
            refresh_statistics(connection, *IMPORTED_TABLES)
    return report


def _finish_report(report: ImportReport, rejects_path: Path | None) -> None:
    report.rejected.sort(key=lambda item: item[0].line)
    if rejects_path is not None and report.rejected:
        write_rejects(rejects_path, report.rejected)


def _check_whole_file(
    engine: Engine,
    source_file: RegistrantCsv,
    options: ImportOptions,
    report: ImportReport,
    spool: IO[bytes],
    progress: Callable[[str, int, int | None], None] | None,
) -> None:
    """The first pass: every row validated and checked, nothing written. The rows to write are
    spooled as marshal blobs of plain tuples, one per chunk, in file order."""
    seen: dict[str, int] = {}
    rules = RowRules(
        options.topics,
        options.named_areas,
        options.region,
        options.key,
        topic_map=options.topic_map,
        drop_unknown_topics=options.drop_unknown_topics,
        header=tuple(source_file.header),
    )
    chunk_size = min(options.batch_size, VALIDATION_CHUNK)
    for chunk, answers in checked_chunks(source_file.rows(), rules, chunk_size, options.workers):
        good: list[ValidRow] = []
        answer_of: dict[int, tuple[Any, ...]] = {}
        for answer in answers:
            row = chunk[answer[0]]
            count_unknown_topics(answer, report.unknown_topics)
            if is_rejection(answer):
                report.rejected.append((row, answer[1]))
                continue
            good.append(valid_row(row, answer))
            answer_of[id(row)] = answer
        good = _reject_duplicates_in_file(good, seen, report)
        with engine.connect() as connection:
            good = _reject_suppressed(connection, good, report)
        # Spooled as the validators' plain answers (marshal is several times faster than
        # pickle here), each blob after its length: marshal.load on a file reads in tiny pieces.
        blob = marshal.dumps(
            (
                [item.row.line for item in good],
                [item.row.values for item in good],
                [answer_of[id(item.row)] for item in good],
            )
        )
        spool.write(len(blob).to_bytes(8, "little"))
        spool.write(blob)
        report.rows += len(chunk)
        if progress:
            progress("checking", report.rows, None)
    report.extra_cell_rows = source_file.extra_cell_rows
    report.extra_cell_lines = source_file.extra_cell_lines


def _unspooled(spool: IO[bytes], columns: tuple[tuple[int, str], ...]) -> Iterator[ValidRow]:
    while size := int.from_bytes(spool.read(8), "little"):
        lines, values, answers = marshal.loads(spool.read(size))
        for line, row_values, answer in zip(lines, values, answers, strict=True):
            yield valid_row(CsvRow(line, row_values, columns), answer)


def _write_spooled(
    engine: Engine,
    spool: IO[bytes],
    columns: tuple[tuple[int, str], ...],
    file_name: str,
    options: ImportOptions,
    report: ImportReport,
    progress: Callable[[str, int, int | None], None] | None,
) -> None:
    """The second pass: the checked rows, written batch by batch."""
    to_write = report.rows - len(report.rejected)
    done = 0
    failed: tuple[int, list[ValidRow], SQLAlchemyError] | None = None

    def finish(writing: Future[BatchOutcome], number: int, batch: list[ValidRow]) -> None:
        nonlocal done, failed
        try:
            outcome = writing.result()
        except SQLAlchemyError as exc:
            failed = failed or (number, batch, exc)
            return
        report.created += outcome.created
        report.updated += outcome.updated
        report.unchanged += outcome.unchanged
        report.rejected += outcome.rejected
        report.batches_written += 1
        done += len(batch)
        if progress:
            progress("writing", done, to_write)

    # Writer threads write batches while this thread reads the next ones from the spool. Rows in
    # different batches never share an email or mobile (duplicates inside the file were
    # rejected; a shared landline is no conflict, nothing makes it unique), and batches that
    # update the same registrant take turns on its row lock (import_batch.existing_owners).
    depth = batches_in_flight(engine)
    with ThreadPoolExecutor(depth, thread_name_prefix="import-writer") as writers:
        in_flight: deque[tuple[Future[BatchOutcome], int, list[ValidRow]]] = deque()
        batch: list[ValidRow] = []
        number = 0

        def submit() -> None:
            nonlocal batch, number
            while len(in_flight) >= depth:
                finish(*in_flight.popleft())
            if failed is None:
                number += 1
                writing = writers.submit(_write_batch, engine, batch, file_name, options)
                in_flight.append((writing, number, batch))
            batch = []

        for item in _unspooled(spool, columns):
            batch.append(item)
            if len(batch) >= options.batch_size:
                submit()
                if failed is not None:
                    break
        if batch and failed is None:
            submit()
        while in_flight:
            finish(*in_flight.popleft())
    if failed is not None:
        raise _interrupted(engine, file_name, options, report, *failed)


def _interrupted(
    engine: Engine,
    file_name: str,
    options: ImportOptions,
    report: ImportReport,
    number: int,
    batch: list[ValidRow],
    error: SQLAlchemyError,
) -> ImportInterrupted:
    lines = f"{batch[0].row.line:,}-{batch[-1].row.line:,}"
    line = _failing_line(engine, batch, file_name, options, error)
    where = f"line {line:,}, in batch {number} (lines {lines})" if line else f"batch {number}"
    first = str(getattr(error, "orig", None) or error).splitlines()[0]
    written = "were rolled back" if options.dry_run else "stay written"
    message = (
        f"database error at {where} of {file_name}: {first}. "
        f"{report.batches_written} batch(es), {report.created + report.updated:,} registrants, "
        f"{written}; fix the cause and run the same import again to finish it"
        + ("" if line else f" (lines {lines} were not written)")
    )
    return ImportInterrupted(message, report=report, batch=number, lines=lines)


def _failing_line(
    engine: Engine,
    batch: list[ValidRow],
    file_name: str,
    options: ImportOptions,
    error: SQLAlchemyError,
) -> int | None:
    """The first row that fails alone, found by halving the batch in transactions that are
    rolled back; None when the fault is the connection's, or only rows together fail."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return None

    def fails(rows: list[ValidRow]) -> bool:
        with engine.connect() as connection:
            try:
                write_batch(connection, rows, file_name, options)
            except SQLAlchemyError:
                return True
            finally:
                connection.rollback()
        return False

    low, high = 0, len(batch)  # batch[low:high] fails
    while high - low > 1:
        middle = (low + high) // 2
        if fails(batch[low:middle]):
            high = middle
        elif fails(batch[middle:high]):
            low = middle
        else:
            return None
    return batch[low].row.line if fails(batch[low:high]) else None
