"""`broadcast queues` and `broadcast failures ...`: what operators watch and fix.

Like `broadcast.cli.alerts`, this module never imports Dramatiq: `cli.py` injects the worker
side with `set_backend` (an object with `.monitor`, `.dispatcher`, `.embedded` and `.run()`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from broadcast.capacity import human_duration
from broadcast.cli import common
from broadcast.errors import ConfigurationError
from broadcast.ops import failures
from broadcast.ops import figures as monitoring_figures
from broadcast.ops.queues import QueueMonitor
from broadcast.runtime import Runtime
from broadcast.vocabulary import DeliveryState

failures_app = typer.Typer(
    help="Failed and dead-lettered deliveries: list, requeue, purge.", no_args_is_help=True
)
_backend_factory: Callable[[Runtime], Any] | None = None


def set_backend(factory: Callable[[Runtime], Any]) -> None:
    """Called by cli.py with a factory of objects that have `.monitor` and `.dispatcher`."""
    global _backend_factory
    _backend_factory = factory


def _open() -> tuple[Runtime, Any]:
    rt = Runtime(common.settings(), engine=common.engine())
    if _backend_factory is None:
        raise ConfigurationError("no worker backend configured (run through the broadcast CLI)")
    return rt, _backend_factory(rt)


def _monitor(backend: Any) -> QueueMonitor | None:
    # Embedded (no Redis): the stub broker lives in whichever process runs `alert send`, so
    # this process would only see its own empty one.
    return None if backend.embedded else backend.monitor


def _figures(snapshot: dict[str, Any]) -> dict[str, Any]:
    keys = ("at", "queues", "workers", "capacity", "waiting", "held", "dead_letters")
    return {k: snapshot[k] for k in keys}


def render(view: dict[str, Any]) -> Group:
    """The `queues` screen: queues, capacity and waiting work, workers."""
    parts: list[Any] = []
    if view["queues"] is None:
        parts.append(Text("No BROADCAST_REDIS_URL: alerts are sent inside `alert send`."))
    else:
        queues = Table("queue", title="Queues")
        for name in ("ready", "delayed", "in progress", "dead"):
            queues.add_column(name, justify="right")
        for q in view["queues"]:
            cells = (q["ready"], q["delayed"], q["in_progress"], q["dead"])
            queues.add_row(q["queue"], *(f"{n:,}" for n in cells))
        parts.append(queues)
    channels = Table("channel", "rate", "used now", "of", "queued", "oldest", title="Channels")
    for c in view["capacity"]:
        waiting = view["waiting"].get(c["channel"], {"queued": 0, "oldest_age": 0.0})
        share = f" ({c['utilisation']:.0%})" if c["utilisation"] is not None else ""
        channels.add_row(
            c["channel"],
            c["rate"] or "unlimited",
            f"{c['used']:,}{share}",
            f"{c['limit']:,}" if c["limit"] else "-",
            f"{waiting['queued']:,}" + _held(view, c["channel"]),
            human_duration(timedelta(seconds=waiting["oldest_age"])) if waiting["queued"] else "-",
        )
    parts.append(channels)
    if view["workers"] is not None:
        workers = Table("worker", "host", "pid", "threads", "queues", "seen", title="Workers")
        for w in view["workers"]:
            workers.add_row(
                w["id"][:8],
                w["host"] or "?",
                str(w["pid"] or "?"),
                str(w["threads"] or "?"),
                " ".join(w["queues"]) or "?",
                f"{w['seen_ago']:.0f} s ago",
            )
        if not view["workers"]:
            workers.add_row("none alive", "", "", "", "", "")
        parts.append(workers)
    return Group(*parts)


def _held(view: dict[str, Any], channel: str) -> str:
    held = (view.get("held") or {}).get(channel)
    if not held:
        return ""
    return f" ({held['held']:,} held for quiet hours until {held['until_local']})"


def plain_line(view: dict[str, Any]) -> str:
    """The `queues --watch` line when output is not a terminal (a pipe or a log)."""
    parts = []
    for q in view["queues"] or []:
        if q["ready"] or q["delayed"] or q["in_progress"] or q["dead"]:
            parts.append(
                f"{q['queue']} ready {q['ready']:,} delayed {q['delayed']:,} "
                f"running {q['in_progress']:,} dead {q['dead']:,}"
            )
    for c in view["capacity"]:
        waiting = view["waiting"].get(c["channel"], {"queued": 0})
        of = f"/{c['limit']:,}" if c["limit"] else ""
        parts.append(
            f"{c['channel']} used {c['used']:,}{of} queued {waiting['queued']:,}"
            + _held(view, c["channel"])
        )
    alive = view["workers"]
    if alive is not None:
        parts.append(f"workers {len(alive)}")
    return f"{time.strftime('%H:%M:%S')} " + "; ".join(parts)


@common.one_line_errors
def queues_command(
    watch: bool = typer.Option(False, "--watch", help="Refresh in place until Ctrl-C."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    every: float = typer.Option(2.0, "--every", help="Seconds between refreshes (--watch)."),
) -> None:
    """Queues (ready, delayed, in progress, dead), send rate against capacity, live workers."""
    rt, backend = _open()
    monitor = _monitor(backend)

    def view() -> dict[str, Any]:
        return _figures(monitoring_figures.snapshot(rt, monitor, minutes=1))

    if as_json:
        typer.echo(json.dumps(view(), indent=2, default=str))
        return
    if not watch:
        common.console.print(render(view()))
        return
    if not common.console.is_terminal:
        # A live display prints nothing to a pipe: a line every few seconds instead.
        try:
            while True:
                print(plain_line(view()), flush=True)
                time.sleep(max(every, 2.0))
        except KeyboardInterrupt:
            return
    try:
        with Live(render(view()), console=common.console, auto_refresh=False) as live:
            while True:
                time.sleep(every)
                live.update(render(view()), refresh=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends


@failures_app.command("list")
@common.one_line_errors
def list_failures(
    alert: int | None = typer.Option(None, "--alert", help="Only this alert."),
    channel: str | None = typer.Option(None, "--channel", help="sms, email or voice."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Failed deliveries grouped by reason, and dead-lettered messages, with counts."""
    rt, backend = _open()
    groups = failures.failure_groups(rt.engine, alert_id=alert, channel=channel)
    monitor = _monitor(backend)
    letters = monitor.dead_letters() if monitor is not None else []
    letters = failures.matching_letters(letters, alert_id=alert, channel=channel)
    dead: dict[tuple[str, str, str], int] = {}
    for d in letters:
        dead[d.queue, d.actor, d.reason] = dead.get((d.queue, d.actor, d.reason), 0) + 1
    if as_json:
        shown = {
            "failures": [asdict(g) | {"requeueable": g.requeueable} for g in groups],
            "dead_letters": [
                {"queue": q, "actor": a, "reason": r, "count": n} for (q, a, r), n in dead.items()
            ],
        }
        typer.echo(json.dumps(shown, indent=2))
        return
    table = Table("count", "channel", "state", "code", "reason", "alerts", "requeue?")
    for g in groups:
        table.add_row(
            f"{g.count:,}",
            g.channel,
            g.state,
            g.code or "",
            g.reason or "",
            str(g.alerts),
            "yes"
            if g.requeueable
            else ("--include-in-doubt" if g.state == DeliveryState.IN_DOUBT else "no"),
        )
    common.console.print(table if groups else "No failed deliveries.")
    if dead:
        letters_table = Table("count", "queue", "actor", "reason", title="Dead letters")
        for (q, a, r), n in sorted(dead.items()):
            letters_table.add_row(f"{n:,}", q, a, r)
        common.console.print(letters_table)


@failures_app.command("requeue")
@common.one_line_errors
def requeue(
    alert: int | None = typer.Option(None, "--alert", help="Only this alert."),
    channel: str | None = typer.Option(None, "--channel", help="sms, email or voice."),
    include_in_doubt: bool = typer.Option(
        False,
        "--include-in-doubt",
        help="Also send again deliveries left in doubt (check the provider first: a copy may "
        "reach someone twice).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who (default: BROADCAST_OPERATOR or the OS user)."
    ),
) -> None:
    """Queue again transient failures (and dead-lettered chunks); never suppressed or
    undeliverable deliveries, and in-doubt ones only with --include-in-doubt."""
    rt, backend = _open()
    groups = failures.failure_groups(rt.engine, alert_id=alert, channel=channel, limit=10_000)
    count = sum(
        g.count
        for g in groups
        if g.requeueable or (include_in_doubt and g.state == DeliveryState.IN_DOUBT)
    )
    monitor = _monitor(backend)
    letters = failures.matching_letters(
        monitor.dead_letters() if monitor is not None else [], alert_id=alert, channel=channel
    )
    if not count and not letters:
        common.console.print("Nothing to requeue.")
        return
    question = f"Requeue {count:,} failed deliveries and {len(letters):,} dead letters?"
    if not yes and not typer.confirm(question):
        raise common.fail("nothing requeued", code=1)
    report = failures.requeue_failures(
        rt,
        backend.dispatcher,
        operator=operator or common.default_operator(),
        monitor=monitor,
        alert_id=alert,
        channel=channel,
        include_in_doubt=include_in_doubt,
    )
    common.console.print(
        f"{report.deliveries:,} deliveries of {len(report.alerts)} alert(s) queued again in "
        f"{report.messages:,} messages; {report.dead_letters:,} dead letters settled."
    )
    if report.messages and backend.embedded:
        backend.run()


@failures_app.command("purge")
@common.one_line_errors
def purge(
    alert: int | None = typer.Option(None, "--alert", help="Only this alert's dead letters."),
    channel: str | None = typer.Option(None, "--channel", help="sms, email or voice."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who (default: BROADCAST_OPERATOR or the OS user)."
    ),
) -> None:
    """Drop dead letters after recording their deliveries as failed."""
    rt, backend = _open()
    monitor = _monitor(backend)
    if monitor is None:
        common.console.print("No BROADCAST_REDIS_URL: no dead letters are kept.")
        return
    letters = failures.matching_letters(monitor.dead_letters(), alert_id=alert, channel=channel)
    if not letters:
        common.console.print("No dead letters.")
        return
    if not yes and not typer.confirm(f"Record and drop {len(letters):,} dead letters?"):
        raise common.fail("nothing purged", code=1)
    removed = failures.purge_dead_letters(
        rt,
        monitor,
        operator=operator or common.default_operator(),
        alert_id=alert,
        channel=channel,
    )
    common.console.print(f"{removed:,} dead letters recorded as failed and dropped.")
