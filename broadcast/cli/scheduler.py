"""`broadcast scheduler run`: the scheduler in the foreground (the Procfile's `scheduler:` line
runs the same tick as `python -m workers.scheduler`). Without Redis it also delivers what it
releases, in this process, like `alert send` does."""

from __future__ import annotations

import time

import typer

from broadcast import scheduling
from broadcast.cli import common
from broadcast.cli.alerts import _backend, _runtime

app = typer.Typer(help="Release scheduled alerts and run escalations.", no_args_is_help=True)


@app.command("run")
@common.one_line_errors
def run(
    once: bool = typer.Option(False, "--once", help="One pass, then exit."),
    interval: float = typer.Option(None, help="Seconds between passes (BROADCAST_SCHEDULER_...)."),
) -> None:
    """Every interval: release due alerts, expire unapproved ones, escalate across channels."""
    rt = _runtime()
    every = interval if interval is not None else rt.settings.scheduler_interval
    while True:
        backend = _backend(rt)
        report = scheduling.tick(rt, backend.dispatcher, embedded=backend.embedded)
        if report.busy or report.expired:
            common.console.print(f"scheduler: {report}", highlight=False)
        if backend.embedded and report.busy:
            backend.run()  # closes its broker when done
        elif backend.embedded:
            backend.app.broker.close()
        if once:
            return
        time.sleep(every)
