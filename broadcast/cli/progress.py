"""Live per-channel progress for `alert send --wait` and `alert status --watch`.

In a terminal: bars that also show each channel's ETA. Without one (a pipe, a log file, cron),
rich's live display prints nothing, so a plain progress line is printed every few seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from broadcast.alerts.compose import AlertStatusView
from broadcast.cli import common
from broadcast.vocabulary import OPEN_STATES

OPEN = OPEN_STATES
PLAIN_EVERY = 5.0  # seconds between progress lines without a terminal
Status = Callable[[], AlertStatusView]  # reads the alert's status afresh


def progress_line(view: AlertStatusView) -> str:
    """ "sms 120/3,000 (eta 4 min); voice 0/103 (...)": one line, for logs and pipes."""
    parts = []
    for channel, states in sorted(view.states.items()):
        total = sum(states.values())
        done = total - sum(states.get(s, 0) for s in OPEN)
        eta = view.eta.get(channel)
        parts.append(f"{channel} {done:,}/{total:,}" + (f" ({eta})" if eta else ""))
    state = "done" if view.done else "sending"
    return f"{time.strftime('%H:%M:%S')} {state}: " + ("; ".join(parts) or "nothing to send")


def watch_progress(
    status: Status,
    *,
    run: Callable[[], None] | None = None,
    every: float = 0.5,
) -> None:
    """Refresh from `status()` until the alert is done; `run` works in a thread meanwhile."""
    worker = threading.Thread(target=run, daemon=True) if run else None
    if worker:
        worker.start()
    if common.console.is_terminal:
        _bars(status, worker, every)
    else:
        _lines(status, worker, max(every, PLAIN_EVERY))
    if worker:
        worker.join()


def _finished(view: AlertStatusView, worker: threading.Thread | None) -> bool:
    return bool(view.done) and (worker is None or not worker.is_alive())


def _lines(status: Status, worker: threading.Thread | None, every: float) -> None:
    while True:
        view = status()
        print(progress_line(view), flush=True)
        if _finished(view, worker):
            return
        time.sleep(every)


def _bars(status: Status, worker: threading.Thread | None, every: float) -> None:
    columns = (
        TextColumn("{task.description:>6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[eta]}"),
    )
    with Progress(*columns, console=common.console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}
        while True:
            view = status()
            for channel, states in sorted(view.states.items()):
                total = sum(states.values())
                done = total - sum(states.get(s, 0) for s in OPEN)
                eta = view.eta.get(channel, "")
                if channel not in tasks:
                    tasks[channel] = progress.add_task(channel, total=total, eta=eta)
                progress.update(tasks[channel], completed=done, total=total, eta=eta)
            if _finished(view, worker):
                break
            time.sleep(every)
