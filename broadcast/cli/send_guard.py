"""`alert send`'s guards against sending the same alert twice (`broadcast.alerts.duplicates`).

An operator who got an error and runs the command again needs to know whether the first try
created an alert, which one, and what became of it; each message here names the earlier alert,
its state and its deliveries, and how to look at it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import typer
from sqlalchemy.exc import IntegrityError

from broadcast.alerts import duplicates
from broadcast.capacity import human_duration
from broadcast.cli import common
from broadcast.delivery.planning import Targeting
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert

KEY_LENGTH = 200  # the column's length (models.Alert.idempotency_key)


def describe(rt: Runtime, alert: Alert) -> str:
    """'alert 17 (sending; sent 1,200, queued 40; created 3 min ago by pc-1234)'."""
    assert alert.id is not None
    states = duplicates.delivery_states(rt.engine, alert.id)
    shown = ", ".join(f"{s} {n:,}" for s, n in sorted(states.items())) or "no deliveries"
    ago = human_duration(duplicates.age(alert))
    return f"alert {alert.id} ({alert.status}; {shown}; created {ago} ago by {alert.operator})"


def already_sent(
    rt: Runtime,
    key: str,
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
) -> Alert | None:
    """The alert already sent with `key`, or None. The same key for a different alert is an
    error: the key names one request, and reusing it by mistake must not hide a new alert."""
    if not key.strip() or len(key) > KEY_LENGTH:
        raise InvalidInput(f"--idempotency-key must be 1 to {KEY_LENGTH} characters")
    earlier = duplicates.by_key(rt.engine, key)
    if earlier is None:
        return None
    if not duplicates.same_request(earlier, template, variables, channels, targeting):
        raise InvalidInput(
            f"idempotency key {key!r} belongs to {describe(rt, earlier)}, which has a different "
            "template, variables or recipients; use a new key for a new alert"
        )
    return earlier


def report_already_sent(rt: Runtime, alert: Alert, key: str) -> None:
    """Nothing is sent again; say so, and print the first alert's id as `send` always does."""
    common.console.print(
        f"Idempotency key {key!r} was already used: {describe(rt, alert)}. Nothing sent again.",
        highlight=False,
        markup=False,
    )
    typer.echo(f"alert id: {alert.id}")


def check_recent_twin(
    rt: Runtime,
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    yes: bool,
    allow_duplicate: bool,
    dry_run: bool,
    scheduled_at: datetime | None = None,
) -> None:
    """Ask before a second alert like one created within the window; with --yes, refuse unless
    --allow-duplicate. A dry run only says so."""
    within = duplicates.window(rt.settings.duplicate_send_window)
    if within is None:
        return
    twin = duplicates.recent_twin(
        rt.engine,
        template,
        variables,
        channels,
        targeting,
        within=within,
        scheduled_at=scheduled_at,
    )
    if twin is None:
        return
    seen = (
        f"{describe(rt, twin)} has the same template, variables and recipients "
        f"(`broadcast alert status {twin.id}`)"
    )
    if dry_run or allow_duplicate:
        common.console.print(f"\nNote: {seen}.", highlight=False, markup=False)
        return
    if yes:
        raise common.fail(
            f"not sent: {seen}; add --allow-duplicate to send a second alert anyway",
            code=common.EXIT_PARTIAL,
        )
    common.console.print(f"\n{seen}.", highlight=False, markup=False)
    if not typer.confirm("Send a second alert anyway?", default=False):
        raise common.fail(f"not sent (the earlier one is alert {twin.id})", code=1)


def create_once(
    key: str | None, create: Callable[..., Alert], rt: Runtime, *args: Any, **kwargs: Any
) -> tuple[Alert, bool]:
    """(`create(rt, *args, **kwargs)`, True), or (the alert another command created with the
    same key a moment ago, False): the unique index on the key decides a race of two commands."""
    try:
        return create(rt, *args, **kwargs), True
    except IntegrityError:
        earlier = duplicates.by_key(rt.engine, key) if key is not None else None
        if earlier is None:
            raise
        return earlier, False
