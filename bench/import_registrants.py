"""Benchmark: import N generated UK registrants on SQLite and PostgreSQL; print rows/s.

    .venv/bin/python bench/import_registrants.py            # N=100,000 on both databases
    .venv/bin/python bench/import_registrants.py -n 20000 --databases sqlite

PostgreSQL: a throwaway database is created and dropped on BROADCAST_TEST_POSTGRES_URL's server
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres). Each database is timed twice:
the first import (all rows new) and a re-run of the same file (all rows unchanged: the
idempotent path an interrupted import takes).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.registrant_data import write_registrants_csv  # noqa: E402
from broadcast.db import engine_for  # noqa: E402
from broadcast.importer import ImportOptions, import_registrants  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from tests.support.servers import throwaway_postgres_database  # noqa: E402

TARGET_SECONDS_PER_100K = 10.0


def cpu_seconds() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run(url: str, label: str, csv_path: Path, count: int, workers: int) -> None:
    engine = engine_for(url)
    settings = Settings()
    options = ImportOptions(
        topics=settings.topic_set,
        named_areas=frozenset(),
        region="GB",
        key=settings.suppression_secret,
        operator="bench",
        workers=workers,
    )
    for attempt in ("first import", "re-run (idempotent)"):
        own0, kids0 = cpu_seconds()
        started = time.perf_counter()
        report = import_registrants(engine=engine, path=csv_path, options=options)
        elapsed = time.perf_counter() - started
        own1, kids1 = cpu_seconds()
        target = TARGET_SECONDS_PER_100K * count / 100_000
        print(
            f"{label:<10} {attempt:<20} {count:>9,} rows  {elapsed:6.2f} s  "
            f"{count / elapsed:>9,.0f} rows/s  "
            f"({elapsed / target:4.2f}x the {target:.1f} s target)  "
            f"cpu: main {own1 - own0:5.1f} s, validators {kids1 - kids0:5.1f} s  "
            f"[created {report.created:,}, unchanged {report.unchanged:,}, "
            f"rejected {len(report.rejected):,}]"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="validation processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="broadcast-bench-") as folder:
        csv_path = write_registrants_csv(Path(folder) / "registrants.csv", args.count)
        print(
            f"generated {args.count:,} registrants ({csv_path.stat().st_size / 1e6:.1f} MB CSV); "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}"
        )
        if "sqlite" in args.databases:
            run(f"sqlite:///{folder}/bench.db", "SQLite", csv_path, args.count, args.workers)
        if "postgresql" in args.databases:
            with throwaway_postgres_database() as url:
                run(url, "PostgreSQL", csv_path, args.count, args.workers)


if __name__ == "__main__":
    main()
