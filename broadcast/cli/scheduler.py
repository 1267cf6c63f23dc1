"""`broadcast scheduler run`: the scheduler in the foreground (the Procfile's `scheduler:` line
runs the same tick as `python -m workers.scheduler`). Without Redis it also delivers what it
releases, in this process, like `alert send` does."""

from __future__ import annotations

import time
from typing import Any

import typer

from broadcast.alerts import scheduling
from broadcast.cli import common
from broadcast.cli.alert_common import open_runtime, worker_backend
from broadcast.cli.outages import broker_down, unreachable
from broadcast.runtime import Runtime

app = typer.Typer(help="Release scheduled alerts and run escalations.", no_args_is_help=True)


@app.command("run")
@common.one_line_errors
def run(
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    interval: float | None = typer.Option(
        None, help="Seconds between passes (BROADCAST_SCHEDULER_...)."
    ),
) -> None:
    """Every interval: release due alerts, expire unapproved ones, escalate across channels."""
    rt = open_runtime()
    every = interval if interval is not None else rt.settings.scheduler_interval
    while True:
        backend = worker_backend(rt)
        report = _tick(rt, backend, once=once)
        if report is None:
            time.sleep(every)
            continue
        if report.busy or report.expired:
            common.console.print(f"scheduler: {report}", highlight=False)
        if backend.embedded and report.busy:
            backend.run()  # closes its broker when done
        elif backend.embedded:
            backend.app.broker.close()
        if once:
            return
        time.sleep(every)


def _tick(rt: Runtime, backend: Any, *, once: bool) -> scheduling.TickReport | None:
    """One pass; None when Redis is down. An alert released in that pass is saved `sending`
    with its deliveries, and the sweeper hands it over when Redis is back; the loop goes on."""
    try:
        return scheduling.tick(rt, backend.dispatcher, embedded=backend.embedded)
    except Exception as exc:
        if not broker_down(exc):
            raise
        why = unreachable(exc, rt.settings)
    common.err_console.print(
        f"scheduler: {why}; alerts released meanwhile go out when the queue is back (the "
        "sweeper hands them over)" + ("" if once else "; trying again next pass"),
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if once:
        raise typer.Exit(common.EXIT_SAVED_NOT_QUEUED)
    return None
