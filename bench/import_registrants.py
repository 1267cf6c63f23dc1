"""Benchmark: import N generated UK registrants on SQLite and PostgreSQL; print rows/s.

    .venv/bin/python bench/import_registrants.py            # N=100,000 on both databases
    .venv/bin/python bench/import_registrants.py -n 20000 --databases sqlite
    .venv/bin/python bench/import_registrants.py -n 1000000 --databases sqlite --memory

PostgreSQL: a throwaway database is created and dropped on BROADCAST_TEST_POSTGRES_URL's server
(default postgresql+psycopg://postgres@127.0.0.1:5432/postgres). Each database is timed twice:
the first import (all rows new) and a re-run of the same file (all rows unchanged: the
idempotent path an interrupted import takes). With --memory, each import also prints the peak
resident memory of the importing process (reset before each import; Linux) and of the largest
validator process.
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.registrant_data import write_registrants_csv  # noqa: E402
from broadcast.importing.importer import import_registrants  # noqa: E402
from broadcast.importing.options import ImportOptions  # noqa: E402
from broadcast.registrants.suppression import bind_keying  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.engine import engine_for  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.support.servers import throwaway_postgres_database  # noqa: E402

TARGET_SECONDS_PER_100K = 10.0


def reference_loop_ms() -> float:
    """Best of 3 timings of a fixed pure-Python loop: this machine's CPU speed varies by half
    from minute to minute (a shared host), so each result is printed beside it."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(1_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def cpu_seconds() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def reset_peak_rss() -> bool:
    """Start a new peak-RSS measurement for this process (Linux: clear_refs resets VmHWM)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> tuple[float, float]:
    """This process's peak RSS since the last reset, and the largest finished child's, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        status = Path("/proc/self/status").read_text()
        own = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        pass
    return own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run(
    url: str,
    label: str,
    csv_path: Path,
    count: int,
    workers: int,
    memory: bool = False,
    rerun: bool = True,
) -> list[float]:
    engine = engine_for(url)
    seconds = []
    settings = Settings(secret_key=secrets.token_urlsafe(32))  # type: ignore[arg-type]
    options = ImportOptions(
        topics=settings.topic_set,
        named_areas=frozenset(),
        region="GB",
        key=bind_keying(settings, engine),
        operator="bench",
        workers=workers,
    )
    for attempt in ("first import", "re-run (idempotent)")[: 2 if rerun else 1]:
        reference = reference_loop_ms()
        if memory:
            reset_peak_rss()
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
            f"rejected {len(report.rejected):,}]  reference loop {reference:.0f} ms"
        )
        if memory:
            own_mb, child_mb = peak_rss_mb()
            print(
                f"{label:<10} {attempt:<20} peak RSS: importing process {own_mb:,.0f} MB, "
                f"largest validator process {child_mb:,.0f} MB (so far in this run)"
            )
        seconds.append(elapsed)
    engine.dispose()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", type=int, default=2, help="validation processes")
    parser.add_argument("--repeat", type=int, default=1, help="fresh databases per engine")
    parser.add_argument("--memory", action="store_true", help="print peak RSS of each import")
    parser.add_argument("--no-rerun", action="store_true", help="time the first import only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="broadcast-bench-") as folder:
        csv_path = write_registrants_csv(Path(folder) / "registrants.csv", args.count)
        print(
            f"generated {args.count:,} registrants ({csv_path.stat().st_size / 1e6:.1f} MB CSV); "
            f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; "
            f"reference loop {reference_loop_ms():.0f} ms (lower is a faster CPU)"
        )
        results: dict[str, list[list[float]]] = {}
        for attempt in range(args.repeat):
            if "sqlite" in args.databases:
                url = f"sqlite:///{folder}/bench-{attempt}.db"
                results.setdefault("SQLite", []).append(
                    run(
                        url,
                        "SQLite",
                        csv_path,
                        args.count,
                        args.workers,
                        args.memory,
                        not args.no_rerun,
                    )
                )
            if "postgresql" in args.databases:
                with throwaway_postgres_database() as url:
                    clean_postgres(url)  # migrated, as `broadcast db upgrade` leaves it
                    results.setdefault("PostgreSQL", []).append(
                        run(
                            url,
                            "PostgreSQL",
                            csv_path,
                            args.count,
                            args.workers,
                            args.memory,
                            not args.no_rerun,
                        )
                    )
        if args.repeat > 1:
            for label, runs in results.items():
                for index, attempt in enumerate(("first import", "re-run")[: len(runs[0])]):
                    times = [r[index] for r in runs]
                    print(
                        f"{label:<10} {attempt:<13} best {min(times):5.2f} s, "
                        f"median {statistics.median(times):5.2f} s, worst {max(times):5.2f} s "
                        f"over {len(times)} runs"
                    )


if __name__ == "__main__":
    main()
