"""What the form routes share: reading form fields, the per-contact limit, and telling the
person when a confirmation could not go out for lack of capacity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.datastructures import FormData

from broadcast.delivery.confirmations import ConfirmationResult
from broadcast.web.context import WebContext


def over_limit(ctx: WebContext, keys: list[str]) -> float:
    """Charge one try to each contact key; the longest wait if any is over its limit."""
    waits = [ctx.limits.per_contact.try_acquire(k) for k in keys]
    return max(waits, default=0.0)


def text(form: FormData, name: str) -> str:
    value: Any = form.get(name)
    return value if isinstance(value, str) else ""


def busy_for(results: Sequence[ConfirmationResult]) -> float | None:
    """The longest wait among confirmations refused for lack of capacity; None if none was."""
    waits = [r.busy_for for r in results if r.busy_for is not None]
    return max(waits) if waits else None


def in_minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
