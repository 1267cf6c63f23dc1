"""Reading a registrant CSV file: encodings, line endings, header checks."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from broadcast.errors import InvalidInput

COLUMNS = (
    "name",
    "email",
    "mobile",
    "landline",
    "postcode",
    "channels",
    "areas",
    "topics",
    "consented_at",
    "source",
)
CONTACT_COLUMNS = {"email", "mobile", "landline"}


class CsvRow(NamedTuple):
    """One data row as read. Its fields dict is built on demand (a tuple is cheap to make and
    to hand to the validator processes; most rows never need the dict in this process)."""

    line: int
    values: list[str]
    columns: tuple[tuple[int, str], ...]  # (position, known column name), shared by all rows

    @property
    def fields(self) -> dict[str, str]:
        values, count = self.values, len(self.values)
        return {name: values[i] if i < count else "" for i, name in self.columns}


# A row that will not be imported, with every reason why.
Rejected = tuple[CsvRow, list[str]]


@dataclass
class RegistrantCsv:
    path: Path
    header: list[str]
    ignored_columns: list[str]
    rows: list[CsvRow]


def read_registrant_csv(path: Path) -> RegistrantCsv:
    """Read and check the whole file; raise InvalidInput with one clear line if it is unusable."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    if b"\x00" in raw[:4096]:
        raise InvalidInput(f"{path.name} is not a CSV file (it contains binary data)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"{path.name} is not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8' and retry"
        ) from None
    if not text.strip():
        raise InvalidInput(f"{path.name} is empty")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader)]
        # The line a record ends on, as a spreadsheet shows it; blank lines are skipped.
        body = [(reader.line_num, values) for values in reader if "".join(values).strip()]
    except csv.Error as exc:
        raise InvalidInput(
            f"{path.name} is not a valid CSV file: line {reader.line_num}: {exc}"
        ) from None
    known = [h for h in header if h in COLUMNS]
    if not CONTACT_COLUMNS & set(known) or "channels" not in known:
        raise InvalidInput(
            f"{path.name} does not look like a registrant CSV: its first line must name the "
            f"columns ({', '.join(COLUMNS)}); found: {', '.join(header[:8]) or 'nothing'}"
        )
    duplicated = sorted({h for h in known if known.count(h) > 1})
    if duplicated:
        raise InvalidInput(f"{path.name} names column(s) twice: {', '.join(duplicated)}")
    columns = tuple((i, h) for i, h in enumerate(header) if h in COLUMNS)
    rows = [CsvRow(line, values, columns) for line, values in body]
    ignored = [h for h in header if h not in COLUMNS]
    return RegistrantCsv(path=path, header=header, ignored_columns=ignored, rows=rows)


def write_rejects(path: Path, rejects: list[Rejected]) -> None:
    """The rejected rows with their line numbers and reasons, for the force to fix and re-import."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reasons", *COLUMNS])
        for row, reasons in rejects:
            writer.writerow(
                [row.line, "; ".join(reasons), *(row.fields.get(c, "") for c in COLUMNS)]
            )
