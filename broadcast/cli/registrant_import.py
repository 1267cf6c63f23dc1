"""`broadcast registrants import`: the bulk transfer of an existing registrant list."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from broadcast import audit, import_topics
from broadcast.cli import common
from broadcast.importer import ImportOptions, import_registrants

OPERATOR = typer.Option(
    None, "--operator", help="Who is doing this (default: BROADCAST_OPERATOR or the OS user)."
)


@common.one_line_errors
def import_csv(
    file: Path = typer.Argument(
        ...,
        help="CSV: name,email,mobile,landline,postcode,channels,areas,topics,consented_at,source",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would happen; change nothing."
    ),
    rejects: Path = typer.Option(None, "--rejects", help="Write rejected rows to this CSV."),
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

    Exit code 0: all rows imported; 1: some rows rejected; 2: the file could not be used.
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
        TextColumn("importing {task.fields[file]}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} rows"),
        TimeRemainingColumn(),
        console=common.err_console,
        transient=True,
        disable=not common.err_console.is_terminal,
    ) as progress:
        # total=0 until the first report: None breaks the "{task.total:,}" column at a terminal.
        task = progress.add_task("import", total=0, file=file.name)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        report = import_registrants(
            engine=engine, path=file, options=options, rejects_path=rejects, progress=advance
        )
    elapsed = time.monotonic() - started
    if not dry_run:
        with engine.begin() as connection:
            audit.record(
                connection,
                operator=options.operator or "unknown",
                action="registrants.imported",
                subject=f"import {report.file}",
                details={
                    "rows": report.rows,
                    "created": report.created,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "rejected": len(report.rejected),
                },
            )
    verb = "would import" if dry_run else "imported"
    for column in report.ignored_columns:
        common.err_console.print(
            f"[yellow]Warning:[/] column '{column}' is not used and was ignored"
        )
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
