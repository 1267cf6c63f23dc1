"""Cells of the CSV files the product writes, safe to open in a spreadsheet.

A cell beginning with =, +, - or @ (or a tab or carriage return before them) is run as a formula
by Excel, LibreOffice and Google Sheets: a sign-up named `=HYPERLINK(...)` would become a link in
the operator's spreadsheet. OWASP's CSV-injection rule: prefix such a cell with a single quote,
which spreadsheets show as text. Every cell is escaped, phone numbers too (`'+447911123456`; a
spreadsheet would otherwise read it as the number 447911123456 and drop the plus).

The import undoes exactly this escape (`unescape_cell`), so a file the product wrote (a rejects
file, once fixed) imports to the same values.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> str:
    """The cell as text, with a quote before anything a spreadsheet would run."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def escape_row(values: Iterable[object]) -> list[str]:
    return [escape_cell(value) for value in values]


def unescape_cell(text: str) -> str:
    """A cell as the product's own escape wrote it, back to its value (other text unchanged)."""
    if text.startswith("'") and text[1:2] in FORMULA_STARTS:
        return text[1:]
    return text
