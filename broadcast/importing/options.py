"""How one import runs: what the importing code (`importer.py`) and the batch writer
(`batch.py`) both read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportOptions:
    """The choices of one import run (`broadcast registrants import` options)."""

    topics: frozenset[str]
    named_areas: frozenset[str]
    region: str
    key: bytes
    operator: str | None
    batch_size: int = 20000
    dry_run: bool = False
    workers: int = 0  # validation processes for large files; 0 validates in this process
    topic_map: tuple[tuple[str, str], ...] = ()  # renames applied first (import_topics)
    drop_unknown_topics: bool = False  # leave unknown topics out instead of rejecting the row
