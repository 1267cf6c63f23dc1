"""Migrating on first use says nothing at INFO: workers start without alembic's chatter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What a Dramatiq worker does: logging at INFO first, then the library migrates on first use.
WORKER_START = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
from broadcast.store.engine import current_revision, engine_for, head_revision
engine = engine_for(sys.argv[1])
assert current_revision(engine) == head_revision()
logging.getLogger("broadcast").info("worker ready")
"""


def test_first_use_migration_logs_nothing_at_info(tmp_path: Path) -> None:
    # Given: a process whose logging is at INFO and an empty database
    url = f"sqlite:///{tmp_path}/fresh.db"

    # When: it migrates the database on first use
    started = subprocess.run(
        [sys.executable, "-c", WORKER_START, url], capture_output=True, text=True, timeout=120
    )

    # Then: the schema is at head, and the only line logged is the worker's own
    assert started.returncode == 0, started.stderr
    assert started.stderr.splitlines() == ["broadcast INFO worker ready"]
