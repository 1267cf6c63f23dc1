"""Handing a saved alert to the queue, when the queue (Redis) may be down.

Releasing an alert commits it and its deliveries (`queued`) before any chunk goes to the broker
(`lifecycle.release`), so a broker outage after that point loses nothing: the sweeper finds
the queued deliveries of a `sending` alert whose queue is empty and hands them over once Redis
answers again. What the operator must learn is that the alert exists and will go out, so that
they do not send it a second time: one line naming the alert, and exit code 3.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import typer

from broadcast.alerts import compose as core
from broadcast.cli import common
from broadcast.cli.outages import broker_down, unreachable
from broadcast.runtime import Runtime
from broadcast.vocabulary import AlertState

T = TypeVar("T")


def release(
    alert_id: int, step: Callable[..., T], rt: Runtime, *args: Any, **kwargs: Any
) -> tuple[T | None, str | None]:
    """Run `step(rt, *args, **kwargs)` (submit, approve, retry, resume: whatever queues alert
    `alert_id`).

    Returns (what `step` returned, None), or (None, why the queue could not be reached) when
    the broker was down after the alert was committed as `sending`; any other error, and a
    broker error before the alert was released, propagates."""
    try:
        return step(rt, *args, **kwargs), None
    except Exception as exc:
        if not broker_down(exc) or core.get_alert(rt, alert_id).status != AlertState.SENDING:
            raise
        return None, unreachable(exc, rt.settings)


def saved_not_queued(rt: Runtime, alert_id: int, why: str | None, *, what: str = "") -> NoReturn:
    """Say the alert is saved and will go out, print its id, and end with exit code 3.

    `what` is the opening of the line ("Alert 7: its failed deliveries are queued again and
    go out"); by default the alert with its deliveries per channel, and not to send it again."""
    if not what:
        counts = core.delivery_counts(rt, alert_id)
        shown = ", ".join(f"{c} {n:,}" for c, n in counts.items()) or "no deliveries"
        what = f"Alert {alert_id} is saved with its deliveries ({shown}) and goes out"
        tail = "; do not send it again"
    else:
        tail = ""
    reason = why or "could not reach the queue"
    common.err_console.print(
        f"{what} when the queue is back: the sweeper hands it over (or `broadcast alert resume "
        f"{alert_id}`){tail}. "
        f"{reason[:1].upper()}{reason[1:]}.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    common.console.print(f"alert id: {alert_id}", highlight=False)
    raise typer.Exit(common.EXIT_SAVED_NOT_QUEUED)


def preview(rt: Runtime, *args: Any, **kwargs: Any) -> core.AlertPreview:
    """`alerts.preview_alert`, shown even while Redis is down (see `without_broker`)."""
    return without_broker(rt, lambda r: core.preview_alert(r, *args, **kwargs))


def without_broker(rt: Runtime, view: Callable[[Runtime], T], *, json: bool = False) -> T:
    """`view(rt)` (a preview or a status: reads that take only ETAs from Redis); while Redis
    is down, the same from the database alone, with a note (on stderr under --json) that the
    capacity in use now, which only Redis knows, is left out of the ETA."""
    try:
        return view(rt)
    except Exception as exc:
        if not broker_down(exc):
            raise
        why = unreachable(exc, rt.settings)
    (common.err_console if json else common.console).print(
        f"Note: {why}; the ETA below leaves out capacity already in use.",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    local = Runtime(rt.settings.model_copy(update={"redis_url": None}), engine=rt.engine)
    return view(local)
