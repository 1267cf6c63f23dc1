"""`broadcast registrants list`: registrants filtered by area, topic, channel and status, as a
table, CSV or a streamed JSON array."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from broadcast.cli import common
from broadcast.csv_cells import escape_row
from broadcast.registrants import people as store
from broadcast.registrants.validation import parse_channels
from broadcast.store.tables import SubscriptionStatus

# The columns every format shows, then how each format shows the channels.
PERSON_FIELDS = ("id", "name", "email", "mobile", "landline", "postcode")
CSV_FIELDS = (*PERSON_FIELDS, "areas", "topics", "sms", "email_status", "voice")
TABLE_FIELDS = (*PERSON_FIELDS, "areas", "topics", "channels")


@common.one_line_errors
def list_registrants(
    area: str | None = typer.Option(None, help="Only those following this area."),
    topic: str | None = typer.Option(None, help="Only those following this topic."),
    channel: str | None = typer.Option(
        None, help="Only those with this channel (sms, email, voice)."
    ),
    status: str | None = typer.Option(
        None, help="With --channel: only this status (active, pending...)."
    ),
    output_format: str = typer.Option(
        "table",
        "--format",
        help="table, csv or json (csv cells starting =, +, - or @ get a leading ', phones too).",
    ),
    limit: int = typer.Option(0, help="Stop after this many (0: all)."),
) -> None:
    """List registrants, filtered by area, topic, channel and status."""
    if output_format not in ("table", "csv", "json"):
        raise common.fail("--format must be table, csv or json")
    if channel:
        parse_channels(channel)
    if status and status not in {s.value for s in SubscriptionStatus}:
        raise common.fail(f"unknown status '{status}'")
    settings = common.settings()
    from broadcast.registrants.contacts import normalise_area, normalise_topic

    area = normalise_area(area, settings.named_area_set) if area else None
    topic = normalise_topic(topic, settings.topic_set) if topic else None
    filters: dict[str, Any] = {"area": area, "topic": topic, "channel": channel, "status": status}
    with common.session() as session, _export_progress(output_format) as progress:
        rows: Iterable[dict[str, Any]] = store.iter_views(session=session, **filters)
        if limit:
            rows = (row for i, row in zip(range(limit), rows, strict=False))
        if progress is not None:
            total = store.count_matching(session=session, **filters)
            rows = progress.track(
                rows, total=min(total, limit) if limit else total, description="exporting"
            )
        if output_format == "json":
            _write_json_array(rows)
        elif output_format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(CSV_FIELDS)
            for row in rows:
                writer.writerow(
                    escape_row(
                        [
                            *(row[f] for f in PERSON_FIELDS),
                            ";".join(row["areas"]),
                            ";".join(row["topics"]),
                            *(row["channels"].get(c, "") for c in ("sms", "email", "voice")),
                        ]
                    )
                )
        else:
            table = Table(*TABLE_FIELDS)
            for row in rows:
                table.add_row(
                    *(str(row[f] or "") for f in PERSON_FIELDS),
                    ", ".join(row["areas"]),
                    ", ".join(row["topics"]),
                    ", ".join(f"{c}:{s}" for c, s in row["channels"].items()),
                )
            common.console.print(table)


@contextmanager
def _export_progress(output_format: str) -> Iterator[Progress | None]:
    """A progress bar on stderr for CSV/JSON exports when a person is watching (stdout may be a
    file, so the bar never mixes with the data)."""
    if output_format == "table" or not common.err_console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,}"),
        TimeRemainingColumn(),
        console=common.err_console,
        transient=True,
    ) as progress:
        yield progress


def _write_json_array(rows: Iterable[dict[str, Any]]) -> None:
    """Stream a JSON array so a million registrants never sit in memory at once."""
    out = sys.stdout
    out.write("[")
    separator = "\n  "
    for row in rows:
        out.write(separator + json.dumps(row, default=str))
        separator = ",\n  "
    out.write("\n]\n" if separator == ",\n  " else "]\n")
