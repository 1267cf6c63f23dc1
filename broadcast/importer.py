"""Bulk import of a registrant list (the transfer of an existing service's data).

Every row is validated before anything is written. Good rows are written in batches, one
transaction each; a row whose email or mobile already belongs to a registrant updates that
registrant, so an interrupted import can simply be run again. A landline may be shared by a
household: it never matches one person to another.
"""

from __future__ import annotations

import gc
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from broadcast import suppression
from broadcast.bulk import prefer_indexes, refresh_statistics
from broadcast.csv_source import Rejected, read_registrant_csv, write_rejects
from broadcast.import_batch import BatchOutcome, write_batch
from broadcast.import_rows import RowRules, ValidRow, validated_chunks


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
    batch_size: int = 20000
    dry_run: bool = False
    workers: int = 0  # validation processes for large files; 0 validates in this process
    topic_map: tuple[tuple[str, str], ...] = ()  # renames applied first (import_topics)
    drop_unknown_topics: bool = False  # leave unknown topics out instead of rejecting the row


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
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Validate every row and write the good ones batch by batch, one transaction per batch
    (with dry_run, each batch is rolled back). Bad rows never stop the good ones."""
    with _cycle_collector_paused():
        return _import(engine, path, options, rejects_path, progress)


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """An import keeps every row of its file alive to the end and makes millions of short-lived
    objects besides; Python's cycle collector would walk all the live ones again and again
    (measured: about 40% of the importing process's CPU time), and in the forked validators that
    walk also copies the parent's memory pages. What an import makes is freed by reference
    counting; the collector is back on when it ends."""
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
    progress: Callable[[int, int], None] | None,
) -> ImportReport:
    source_file = read_registrant_csv(path)
    report = ImportReport(
        file=path.name,
        rows=len(source_file.rows),
        ignored_columns=source_file.ignored_columns,
        dry_run=options.dry_run,
    )
    seen: dict[str, int] = {}
    done = 0

    def finish(writing: Future[BatchOutcome], rows: int) -> None:
        nonlocal done
        outcome = writing.result()
        report.created += outcome.created
        report.updated += outcome.updated
        report.unchanged += outcome.unchanged
        report.rejected += outcome.rejected
        done += rows
        if progress:
            progress(done, report.rows)

    # Writer threads write batches while this thread takes in and checks the next ones (the
    # writers mostly wait on the database, which frees the GIL). Rows in different batches never
    # share an email or mobile (duplicates inside the file are rejected here first; a shared
    # landline is no conflict, nothing makes it unique), and batches
    # that update the same registrant take turns on its row lock (import_batch.existing_owners).
    depth = batches_in_flight(engine)
    rules = RowRules(
        options.topics,
        options.named_areas,
        options.region,
        options.key,
        options.topic_map,
        options.drop_unknown_topics,
    )
    chunk_size = min(options.batch_size, VALIDATION_CHUNK)
    chunks = validated_chunks(
        source_file.rows, rules, chunk_size, options.workers, report.unknown_topics
    )
    with ThreadPoolExecutor(depth, thread_name_prefix="import-writer") as writers:
        in_flight: deque[tuple[Future[BatchOutcome], int]] = deque()
        batch: list[ValidRow] = []
        taken = 0  # rows of the file behind the batch being gathered, rejected ones included

        def submit() -> None:
            nonlocal batch, taken
            while len(in_flight) >= depth:
                finish(*in_flight.popleft())
            writing = writers.submit(_write_batch, engine, batch, path.name, options)
            in_flight.append((writing, taken))
            batch, taken = [], 0

        for results in chunks:
            good: list[ValidRow] = []
            for result in results:
                if isinstance(result, ValidRow):
                    good.append(result)
                else:
                    report.rejected.append(result)
            good = _reject_duplicates_in_file(good, seen, report)
            with engine.connect() as connection:
                batch += _reject_suppressed(connection, good, report)
            taken += len(results)
            if len(batch) >= options.batch_size:
                submit()
        if taken:
            submit()
        while in_flight:
            finish(*in_flight.popleft())
    if not options.dry_run and report.created + report.updated >= ANALYZE_AFTER_ROWS:
        # The transfer notice and the first alerts follow at once: a targeted plan over 100,000
        # imported registrants took 0.46 s without statistics, 0.06 s with them.
        with engine.begin() as connection:
            refresh_statistics(connection, *IMPORTED_TABLES)
    report.rejected.sort(key=lambda item: item[0].line)
    if rejects_path is not None and report.rejected:
        write_rejects(rejects_path, report.rejected)
    return report
