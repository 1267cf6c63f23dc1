"""Message text for people to read and copy: words wrap to the terminal, links never do.

Rich folds a word longer than the line, which cuts a manage link in two at 80 columns; here a
long word (a link) gets a line of its own and is printed whole, for the terminal to wrap and a
copy to take in one piece.
"""

from __future__ import annotations

import textwrap

from rich.console import Console


def print_wrapped(console: Console, text: str, indent: int = 0) -> None:
    """Print `text` as it is (no markup), each of its lines wrapped at word boundaries."""
    width = max(console.width - indent, 20)
    prefix = " " * indent
    for line in text.splitlines() or [""]:
        parts = textwrap.wrap(
            line, width=width, break_long_words=False, break_on_hyphens=False
        ) or [""]
        for part in parts:
            console.print(prefix + part, markup=False, highlight=False, soft_wrap=True)
