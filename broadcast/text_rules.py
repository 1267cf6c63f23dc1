"""One rule for every text field a person or a file gives us (web forms, CLI, imports).

Text is single-line and printable: no control characters (NUL, CR, LF, tab, escape, DEL, the C1
range), no Unicode line or paragraph separators, and no bidirectional overrides that make text
read differently from what it is. PostgreSQL refuses NUL in text (a server error before this
rule), SQLite stored it, and a line break in a name put attacker-written lines into our emails.
"""

from __future__ import annotations

import re

# Unicode category Cc (U+0000-001F, U+007F-009F), line/paragraph separators, and the
# bidirectional embeddings, overrides and isolates. One regex: imports check every cell.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMES = {
    "\x00": "a NUL byte",
    "\r": "a line break",
    "\n": "a line break",
    "\u2028": "a line break",
    "\u2029": "a line break",
    "\t": "a tab",
}


def control_character_problem(value: str) -> str | None:
    """Why `value` is not acceptable single-line text, or None when it is.

    The reason names the kind of character ("a line break", "a NUL byte", "a control
    character (U+001B)") and never quotes the value, so it is safe to show and to log.
    """
    found = _FORBIDDEN.search(value)
    if found is None:
        return None
    char = found[0]
    what = _NAMES.get(char, f"a control character (U+{ord(char):04X})")
    return f"contains {what}: use plain text on one line"


# The import's per-cell check (broadcast/importing/rows.py): C0 controls except tab, DEL, and the C1
# controls (which UTF-8 text only holds on purpose). Tab is allowed in a cell: it is whitespace,
# and stripping removes it at the ends; the field rules above still apply to the values kept.
_CELL_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    """Whether an imported cell holds a control character (tab allowed)."""
    return _CELL_CONTROLS.search(text) is not None


def describe_control_character(text: str) -> str | None:
    """The first control character in text, named for a person ('NUL (0x00)'), or None."""
    found = _CELL_CONTROLS.search(text)
    if found is None:
        return None
    code = ord(found.group())
    names = {0x00: "NUL", 0x0A: "line break", 0x0D: "carriage return", 0x7F: "DEL"}
    return f"{names.get(code, 'control character')} (0x{code:02X})"
