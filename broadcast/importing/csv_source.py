"""Reading a registrant CSV file: encodings, line endings, header checks, size limits.

The file is streamed, never held whole: its lines are read in blocks, each bounded in bytes before
it is parsed (a 50 MB line is refused before it costs 50 MB), and each record in cells.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from broadcast.csv_cells import escape_row, unescape_cell
from broadcast.errors import InvalidInput

if TYPE_CHECKING:
    from _csv import Reader as CsvReader  # what csv.reader() returns

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
    "language",
)
CONTACT_COLUMNS = {"email", "mobile", "landline"}

# A registrant's row is a few hundred bytes; these bounds only stop junk before it is parsed.
MAX_LINE_BYTES = 64 * 1024
MAX_CELLS = 256
SNIFF_BYTES = 4096
BLOCK_BYTES = 1 << 20
# Lines named in the warning about extra cells (all of them are counted).
EXTRA_CELL_LINES_KEPT = 50


class CsvRow(NamedTuple):
    """One data row as read. Its fields dict is built on demand (a tuple is cheap to make and
    to hand to the validator processes; most rows never need the dict in this process)."""

    line: int
    values: list[str]
    columns: tuple[tuple[int, str], ...]  # (position, known column name), shared by all rows

    @property
    def fields(self) -> dict[str, str]:
        """Known columns by name, with the product's own formula escape undone (csv_cells)."""
        values, count = self.values, len(self.values)
        return {name: unescape_cell(values[i]) if i < count else "" for i, name in self.columns}


# A row that will not be imported, with every reason why.
Rejected = tuple[CsvRow, list[str]]


@dataclass
class RegistrantCsv:
    """An opened, header-checked file; `rows()` streams its data rows once."""

    path: Path
    header: list[str]
    ignored_columns: list[str]
    columns: tuple[tuple[int, str], ...]
    _records: Iterator[CsvRow]
    # Rows with non-empty cells beyond the header's columns (ignored): their count and first lines.
    extra_cell_rows: int = 0
    extra_cell_lines: list[int] = field(default_factory=list)

    def rows(self) -> Iterator[CsvRow]:
        return self._records


def read_registrant_csv(path: Path) -> RegistrantCsv:
    """Open the file and check its encoding and header; raise InvalidInput with one clear line
    if it is unusable. Problems further into the file are raised, as one line naming the line
    number, while `rows()` is read."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
    try:
        return _open(path, handle)
    except BaseException:
        handle.close()
        raise


def _open(path: Path, handle: BinaryIO) -> RegistrantCsv:
    reader = csv.reader(_text_lines(handle, path.name), strict=True)
    header = next(_records(reader, path.name), None)
    if header is None:
        raise InvalidInput(f"{path.name} is empty")
    header = [h.strip().lower() for h in header]
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
    source = RegistrantCsv(
        path=path,
        header=header,
        ignored_columns=[h for h in header if h not in COLUMNS],
        columns=columns,
        _records=iter(()),
    )
    source._records = _data_rows(source, reader, handle)
    return source


def _data_rows(source: RegistrantCsv, reader: CsvReader, handle: BinaryIO) -> Iterator[CsvRow]:
    width = len(source.header)
    columns = source.columns
    with handle:
        for values in _records(reader, source.path.name):
            line = reader.line_num
            if len(values) > width and any(v.strip() for v in values[width:]):
                source.extra_cell_rows += 1
                if len(source.extra_cell_lines) < EXTRA_CELL_LINES_KEPT:
                    source.extra_cell_lines.append(line)
            yield CsvRow(line, values, columns)


def _records(reader: CsvReader, name: str) -> Iterator[list[str]]:
    """The non-blank records, each bounded in cells; a broken file is one clear error."""
    try:
        for values in reader:
            if len(values) > MAX_CELLS:
                raise InvalidInput(
                    f"{name}: line {reader.line_num:,} has {len(values):,} cells; a registrant "
                    f"row has at most {MAX_CELLS} (is the separator a comma?)"
                )
            # The line a record ends on, as a spreadsheet shows it; blank lines are skipped.
            if "".join(values).strip():
                yield values
    except csv.Error as exc:
        raise InvalidInput(
            f"{name} is not a valid CSV file: line {reader.line_num:,}: {exc}"
        ) from None


def _text_lines(handle: BinaryIO, name: str) -> Iterator[str]:
    """The file's physical lines as text, terminators kept (the csv module needs them to read
    quoted line breaks), each checked to be at most MAX_LINE_BYTES of UTF-8 before decoding."""
    pending = handle.read(SNIFF_BYTES)
    _check_encoding(pending, name)
    if pending.startswith(codecs.BOM_UTF8):
        pending = pending[len(codecs.BOM_UTF8) :]
    number = 0
    while True:
        block = handle.read(BLOCK_BYTES)
        if block.endswith(b"\r"):
            block += handle.read(1)  # keep a CRLF in one piece
        parts = (pending + block).splitlines(keepends=True)  # bytes: splits on CR and LF only
        pending = b""
        if block and parts and not parts[-1].endswith((b"\n", b"\r")):
            pending = parts.pop()
        for part in parts:
            number += 1
            if len(part) > MAX_LINE_BYTES:
                raise _too_long(name, number)
            try:
                yield part.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InvalidInput(
                    f"{name} is not UTF-8 text (line {number:,}, byte {exc.start + 1} of the "
                    "line); save it as 'CSV UTF-8' and retry"
                ) from None
        if len(pending) > MAX_LINE_BYTES:
            raise _too_long(name, number + 1)
        if not block:
            return


def _too_long(name: str, number: int) -> InvalidInput:
    return InvalidInput(
        f"{name}: line {number:,} is longer than {MAX_LINE_BYTES:,} bytes; a registrant row "
        "is far shorter (is this a registrant CSV?)"
    )


def _check_encoding(head: bytes, name: str) -> None:
    """UTF-16 (by its byte-order mark, or ASCII text with every other byte NUL) and binary data
    are refused from the first bytes. A NUL in otherwise valid UTF-8 text is a bad row, found
    where it is, with its line number."""
    utf16 = f"{name} is UTF-16 text; save it as UTF-8 ('CSV UTF-8' in Excel) and retry"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InvalidInput(utf16)
    if b"\x00" not in head:
        return
    even, odd = head[0::2].count(0), head[1::2].count(0)
    pairs = len(head) // 2 or 1
    if max(even, odd) > pairs * 0.3 and min(even, odd) < pairs * 0.05:
        raise InvalidInput(utf16)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            raise InvalidInput(f"{name} is not a CSV file (it contains binary data)") from None


def write_rejects(path: Path, rejects: list[Rejected]) -> None:
    """The rejected rows with their line numbers and reasons, for the force to fix and re-import
    (cells escaped against formula injection; the import undoes the escape)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["line", "reasons", *COLUMNS])
        for row, reasons in rejects:
            fields = row.fields
            writer.writerow(
                escape_row([row.line, "; ".join(reasons), *(fields.get(c, "") for c in COLUMNS)])
            )
