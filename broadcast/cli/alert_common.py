"""What the `broadcast alert ...` commands share (`alerts.py`, `alert_lifecycle.py`,
`scheduler.py`): the runtime, the injected worker backend, the audit line, `--var` pairs, the
status summary.

No Dramatiq here: `cli.py` injects the worker backend with `set_backend`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from broadcast.alerts import compose as core
from broadcast.cli import common
from broadcast.errors import ConfigurationError, InvalidInput
from broadcast.ops import audit
from broadcast.runtime import Runtime

_backend_factory: Callable[[Runtime], Any] | None = None

OPERATOR = typer.Option(
    None, "--operator", help="Who is doing this (default: BROADCAST_OPERATOR or the OS user)."
)


def set_backend(factory: Callable[[Runtime], Any]) -> None:
    """Called by cli.py: builds the object with `.dispatcher`, `.embedded` and `.run()`."""
    global _backend_factory
    _backend_factory = factory


def open_runtime() -> Runtime:
    """The runtime of the configured settings and database."""
    return Runtime(common.settings(), engine=common.engine())


def worker_backend(rt: Runtime) -> Any:
    """The worker side `cli.py` injected (Redis workers, or delivery in this process)."""
    if _backend_factory is None:
        raise ConfigurationError("no worker backend configured (run through the broadcast CLI)")
    return _backend_factory(rt)


def audit_alert(
    rt: Runtime, action: str, alert_id: int | None, operator: str | None, **details: Any
) -> None:
    """One audit line about an alert, by `operator` (default: the one running the command)."""
    with rt.engine.begin() as connection:
        audit.record(
            connection,
            operator=operator or common.default_operator(),
            action=action,
            subject=f"alert {alert_id}",
            details=details,
        )


def parse_variables(pairs: list[str]) -> dict[str, str]:
    """`--var name=value` options as template variables."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--var {pair!r} must look like name=value")
        out[name.strip()] = value
    return out


def print_summary(view: core.AlertStatusView) -> None:
    """Delivery states per channel, shared household calls and the top failure reasons."""
    for channel, states in sorted(view.states.items()):
        parts = ", ".join(f"{s} {n:,}" for s, n in sorted(states.items()))
        common.console.print(f"  {channel}: {parts}", highlight=False)
    for channel, calls in sorted(view.households.items()):
        shared = sum(calls.values())
        outcome = ", ".join(f"{s} {n:,}" for s, n in sorted(calls.items()))
        common.console.print(
            f"  {channel}: household {shared:,} = registrants sharing a number called once for "
            f"everyone on it (those calls: {outcome})",
            highlight=False,
        )
    for f in view.failures[:10]:
        common.console.print(
            f"  ! {f['channel']} {f['state']} x{f['count']}: {f['reason'] or ''}", highlight=False
        )
