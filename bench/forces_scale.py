"""Benchmark: one force's alert on a platform of 43 forces against the same force alone.

    .venv/bin/python bench/forces_scale.py [--forces 43] [--people 5000] [--runs 5]

Two PostgreSQL databases: one holding only the force (5,000 registrants), one holding 43 forces
of 5,000 each (215,000). In each, the force sends an alert to all its registrants by SMS and
email, as `alert send` does (create, plan, queue), and the chunks are then delivered in this
process through recording channels (claims, records, group commits: the database's share of
sending, without the providers). Prints the median of each step, and platform / alone. Not a
test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from broadcast.alerts import approval  # noqa: E402
from broadcast.alerts import compose as alerts  # noqa: E402
from broadcast.delivery.deliver import deliver_chunk  # noqa: E402
from broadcast.delivery.dispatch import RecordingDispatcher  # noqa: E402
from broadcast.delivery.planning import Targeting  # noqa: E402
from broadcast.forces import registry  # noqa: E402
from broadcast.runtime import Runtime  # noqa: E402
from broadcast.settings import Settings  # noqa: E402
from broadcast.store.bulk import refresh_statistics  # noqa: E402
from broadcast.store.engine import create_db_engine  # noqa: E402
from broadcast.store.tenancy import national, scoped  # noqa: E402
from tests.delivery.conftest import clean_postgres  # noqa: E402
from tests.delivery.factories import Person, RecordingChannel, add_people  # noqa: E402
from tests.support.forces import add_sharing_senders  # noqa: E402
from tests.support.servers import throwaway_postgres_database  # noqa: E402

VARS = {"scam": "Callers pretending to be police ask for bank cards", "advice": ""}
CHANNELS = ("sms", "email")


def build(db: str, forces: int, people: int) -> Runtime:
    """A platform of `forces` forces of `people` registrants each; the runtime of the last."""
    clean_postgres(db)
    engine = create_db_engine(db)
    settings = Settings(
        _env_file=None,
        database_url=db,
        secret_key=secrets.token_urlsafe(32),  # type: ignore[arg-type]
        voice_rate=None,
    )
    codes = ["default"] + [f"force-{i:02d}" for i in range(1, forces)]
    for code in codes[1:]:
        # Sending as the platform, so every force's runtime shares the recording channels.
        add_sharing_senders(engine, settings, code)
    for force in registry.all_forces(engine):
        add_people(scoped(engine, force.id), [Person(channels=CHANNELS)] * people)
    with national(engine).begin() as conn:
        refresh_statistics(conn, "registrant", "subscription", "registrant_area")
    target = registry.by_code(engine, codes[-1])
    recording = {c: RecordingChannel(name=c) for c in CHANNELS}
    base = Runtime(settings, engine=scoped(engine, 1), channels=recording)
    return base.for_force(target.id)


def send_once(rt: Runtime) -> tuple[float, float, int]:
    """(seconds to create, plan and queue; seconds to deliver every chunk; deliveries)."""
    dispatcher = RecordingDispatcher()
    started = time.perf_counter()
    alert = alerts.create_alert(
        rt, "fraud-warning", VARS, CHANNELS, Targeting(everyone=True), operator="bench"
    )
    approval.submit(rt, dispatcher, alert, operator="bench")
    planned = time.perf_counter()
    sent = sum(deliver_chunk(rt, chunk).sent for chunk in dispatcher.take())
    return planned - started, time.perf_counter() - planned, sent


def measure(rt: Runtime, runs: int) -> tuple[float, float, int]:
    send_once(rt)  # warm-up: connections, templates, caches
    results = [send_once(rt) for _ in range(runs)]
    plan = statistics.median(r[0] for r in results)
    deliver = statistics.median(r[1] for r in results)
    return plan, deliver, results[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--forces", type=int, default=43)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    figures = {}
    for label, forces in (("alone", 1), ("platform", args.forces)):
        with throwaway_postgres_database() as db:
            started = time.perf_counter()
            rt = build(db, forces, args.people)
            print(
                f"{label}: {forces} force(s) x {args.people:,} registrants built in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
            figures[label] = measure(rt, args.runs)
            rt.base_engine.dispose()
    for label, (plan, deliver, sent) in figures.items():
        print(
            f"{label:>8}: create+plan+queue {plan * 1e3:7.1f} ms, deliver {deliver:6.2f} s "
            f"({sent:,} deliveries, {sent / deliver:,.0f}/s), median of {args.runs}"
        )
    (p1, d1, _), (p2, d2, _) = figures["alone"], figures["platform"]
    print(
        f"platform / alone: plan {p2 / p1:.2f}x, deliver {d2 / d1:.2f}x, "
        f"both {(p2 + d2) / (p1 + d1):.2f}x"
    )


if __name__ == "__main__":
    main()
