"""Rules for free text that people type or import: no control characters.

A NUL makes PostgreSQL refuse the whole statement (and SQLite stores it), and line breaks or other
control characters in a name end up in messages and files under the force's name. Tab is the one
allowed: it is whitespace, and stripping removes it at the ends.
"""

from __future__ import annotations

import re

# C0 controls except tab, DEL, and the C1 controls (which UTF-8 text only holds on purpose).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def describe_control_character(text: str) -> str | None:
    """The first control character in text, named for a person ('NUL (0x00)'), or None."""
    found = CONTROL_CHARACTERS.search(text)
    if found is None:
        return None
    code = ord(found.group())
    names = {0x00: "NUL", 0x0A: "line break", 0x0D: "carriage return", 0x7F: "DEL"}
    return f"{names.get(code, 'control character')} (0x{code:02X})"
