"""`broadcast registrants import`: the bulk transfer of an existing registrant list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine

from broadcast.cli import common
from broadcast.importing import topics as import_topics
from broadcast.importing.importer import ImportInterrupted, ImportReport, import_registrants
from broadcast.importing.options import ImportOptions
from broadcast.ops import audit

OPERATOR = typer.Option(
    None, "--operator", help="Who is doing this (default: BROADCAST_OPERATOR or the OS user)."
)


@common.one_line_errors
def import_csv(
    file: Path = typer.Argument(
        ...,
        help="CSV: name,email,mobile,landline,postcode,channels,areas,topics,consented_at,source"
        "[,language]",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would happen; change nothing."
    ),
    rejects: Path | None = typer.Option(
        None,
        "--rejects",
        help="Write rejected rows to this CSV (formula-like cells get a leading '; the import "
        "reads them back as they were).",
    ),
    operator: str = OPERATOR,
    workers: int = typer.Option(
        2, help="Processes validating rows of large files (0: validate in this process)."
    ),
    map_topic: list[str] = typer.Option(
        [], "--map-topic", help="Rename a topic of the file to a known one: old=new (repeatable)."
    ),
    unknown_topics: str = typer.Option(
        "reject",
        "--unknown-topics",
        help="A topic that is not known (after --map-topic): reject the row, or drop the topic.",
    ),
) -> None:
    """Import (transfer) a registrant list. Consent given to the previous holder is kept.

    The whole file is checked before anything is written. Exit code 0: all rows imported;
    1: some rows rejected; 2: the file could not be used, or a database error stopped the
    writing part-way (recorded in the audit log as a partial import: run it again to finish).
    """
    settings = common.settings()
    options = ImportOptions(
        topics=settings.topic_set,
        named_areas=settings.named_area_set,
        region=settings.default_region,
        key=common.suppression_key(),
        operator=operator or common.default_operator(),
        batch_size=settings.import_batch_size,
        dry_run=dry_run,
        workers=workers,
        topic_map=import_topics.parse_topic_map(map_topic, settings.topic_set),
        drop_unknown_topics=import_topics.check_choice(unknown_topics) == "drop",
    )
    engine = common.engine()
    started = time.monotonic()
    with Progress(
        TextColumn("{task.fields[stage]} {task.fields[file]}"),
        BarColumn(),
        TextColumn("{task.completed:,}{task.fields[of]} rows"),
        TimeRemainingColumn(),
        console=common.err_console,
        transient=True,
        disable=not common.err_console.is_terminal,
    ) as progress:
        # Checking has no total (the file is streamed), writing has one. The columns must work
        # with both: a "{task.total:,}" column breaks on None at a terminal, so the "of N" part
        # is a field that stays empty until the total is known.
        task = progress.add_task("import", total=None, file=file.name, stage="checking", of="")

        def advance(stage: str, done: int, total: int | None) -> None:
            of = "" if total is None else f"/{total:,}"
            progress.update(task, completed=done, total=total, stage=stage, of=of)

        try:
            report = import_registrants(
                engine=engine, path=file, options=options, rejects_path=rejects, progress=advance
            )
        except ImportInterrupted as exc:
            if not dry_run:
                _audit(engine, options.operator, exc.report, {"partial": True, "batch": exc.batch})
            raise
    elapsed = time.monotonic() - started
    if not dry_run:
        _audit(engine, options.operator, report, {})
    verb = "would import" if dry_run else "imported"
    _warn(report)
    typer.echo(
        f"{report.file}: {report.rows:,} rows; {verb} {report.created:,} new, "
        f"{report.updated:,} updated, {report.unchanged:,} unchanged; "
        f"{len(report.rejected):,} rejected ({elapsed:.1f} s)"
    )
    for line in import_topics.summary(
        report.unknown_topics, options.topics, dropped=options.drop_unknown_topics
    ):
        typer.echo(line)
    for row, reasons in report.rejected[:50]:
        typer.echo(f"  line {row.line}: {'; '.join(reasons)}")
    if len(report.rejected) > 50:
        typer.echo(
            f"  ... and {len(report.rejected) - 50:,} more"
            + (f" (all in {rejects})" if rejects else " (use --rejects FILE for all)")
        )
    elif rejects and report.rejected:
        typer.echo(f"rejected rows written to {rejects}")
    if report.rejected:
        raise typer.Exit(common.EXIT_PARTIAL)


def _audit(
    engine: Engine, operator: str | None, report: ImportReport, extra: dict[str, Any]
) -> None:
    """One `registrants.imported` event; a partial one says so and which batch failed."""
    with engine.begin() as connection:
        audit.record(
            connection,
            operator=operator or "unknown",
            action="registrants.imported",
            subject=f"import {report.file}",
            details={
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": len(report.rejected),
                **extra,
            },
        )


def _warn(report: ImportReport) -> None:
    for column in report.ignored_columns:
        common.err_console.print(
            f"[yellow]Warning:[/] column '{column}' is not used and was ignored"
        )
    if report.extra_cell_rows:
        lines = ", ".join(f"{n:,}" for n in report.extra_cell_lines)
        more = report.extra_cell_rows - len(report.extra_cell_lines)
        common.err_console.print(
            f"[yellow]Warning:[/] {report.extra_cell_rows:,} row(s) have more cells than the "
            f"header names; the extra cells were ignored (line {lines}"
            + (f" and {more:,} more)" if more > 0 else ")")
        )
