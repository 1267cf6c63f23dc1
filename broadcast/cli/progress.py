"""Live per-channel progress bars for `alert send --wait` and `alert status --watch`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from broadcast.cli import common
from broadcast.models import DeliveryState

OPEN = (DeliveryState.QUEUED, DeliveryState.SENDING)


def watch_progress(
    status: Callable[[], object], *, run: Callable[[], None] | None = None, every: float = 0.5
) -> None:
    """Refresh bars from `status()` until the alert is done; `run` works in a thread meanwhile."""
    worker = threading.Thread(target=run, daemon=True) if run else None
    if worker:
        worker.start()
    columns = (TextColumn("{task.description:>6}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=common.console, transient=False) as progress:
        tasks: dict[str, int] = {}
        while True:
            view = status()
            for channel, states in sorted(view.states.items()):  # type: ignore[attr-defined]
                total = sum(states.values())
                done = total - sum(states.get(s, 0) for s in OPEN)
                if channel not in tasks:
                    tasks[channel] = progress.add_task(channel, total=total)
                progress.update(tasks[channel], completed=done, total=total)
            finished = view.done and (worker is None or not worker.is_alive())  # type: ignore[attr-defined]
            if finished:
                break
            time.sleep(every)
    if worker:
        worker.join()
