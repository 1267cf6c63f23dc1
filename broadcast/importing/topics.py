"""Topics in a transfer file that are not the force's: renaming them, and saying what was found.

Another organisation's list rarely uses the force's topic names. `--map-topic old=new` renames
before validation; a topic still unknown rejects its row (the default) or is dropped from it
(`--unknown-topics drop`). Either way the import lists each unknown topic once, with how many
rows had it and the nearest known topic.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterable

from broadcast.errors import InvalidInput
from broadcast.registrants.contacts import topic_slug

UNKNOWN_TOPIC_CHOICES = ("reject", "drop")


def parse_topic_map(pairs: Iterable[str], topics: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """'old=new' pairs -> ((old, new), ...), both as topic slugs; `new` must be a known topic."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        old, new = topic_slug(old), topic_slug(new)
        if not sep or not old or not new:
            raise InvalidInput(f"--map-topic {pair!r} must look like old=new")
        if topics and new not in topics:
            raise InvalidInput(
                f"--map-topic {pair!r}: '{new}' is not a known topic{_hint(new, topics)}"
            )
        mapping[old] = new
    return tuple(mapping.items())


def check_choice(choice: str) -> str:
    if choice not in UNKNOWN_TOPIC_CHOICES:
        raise InvalidInput(f"--unknown-topics {choice!r}: use reject or drop")
    return choice


def _hint(topic: str, topics: frozenset[str]) -> str:
    nearest = difflib.get_close_matches(topic, sorted(topics), n=1, cutoff=0.6)
    return f" (did you mean {nearest[0]}?)" if nearest else ""


def summary(unknown: Counter[str], topics: frozenset[str], *, dropped: bool) -> list[str]:
    """One line per unknown topic, most rows first, then what to do about them."""
    lines = []
    for topic, rows in sorted(unknown.items(), key=lambda item: (-item[1], item[0])):
        counted = f"{rows:,} row{'' if rows == 1 else 's'}"
        what = f"dropped from {counted}" if dropped else f"in {counted} (rejected)"
        lines.append(f"unknown topic '{topic}' {what}{_hint(topic, topics)}")
    if lines and not dropped:
        lines.append("rename with --map-topic OLD=NEW, or leave them out: --unknown-topics drop")
    return lines
