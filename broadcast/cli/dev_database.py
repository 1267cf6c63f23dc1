"""One line on stderr when a command falls back to the development database in this folder.

Run from a folder without `.env`, every command would otherwise silently create and use a new
`./broadcast.db`. The line is printed at most once per process: always when the file was just
created, and otherwise only in interactive use (stdout and stderr both terminals), so scripts,
pipelines and `--format csv/json` output hear of the database only when it is created.
Setting BROADCAST_DATABASE_URL, even to the same file, silences it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from broadcast.settings import Settings

_announced: set[str] = set()


def development_database(settings: Settings) -> Path | None:
    """The SQLite file of the built-in default, or None when the URL was configured."""
    if "database_url" in settings.model_fields_set:
        return None
    name = make_url(settings.database_url).database
    if not name or name == ":memory:":
        return None
    return Path(name)


def open_announced(settings: Settings, open_engine: Callable[[str], Engine]) -> Engine:
    """`open_engine(settings.database_url)`, saying which database it is when it is the default."""
    path = development_database(settings)
    key = str(path.resolve()) if path is not None else ""
    if path is None or key in _announced:
        return open_engine(settings.database_url)
    existed = path.exists()
    engine = open_engine(settings.database_url)
    _announced.add(key)
    if not existed or (sys.stdout.isatty() and sys.stderr.isatty()):
        shown = str(path) if path.is_absolute() else f"./{path}"
        # One short line (README: BROADCAST_DATABASE_URL chooses another).
        created = "" if existed else " (created now)"
        print(f"using the development database {shown}{created}", file=sys.stderr)
    return engine
