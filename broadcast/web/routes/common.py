"""What the form routes share: reading a form with its CSRF check and the per-IP limit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from broadcast.web import csrf, pages
from broadcast.web.context import WebContext


@dataclass
class Posted:
    """A form that passed CSRF and the per-IP limit; `refusal` is the response otherwise."""

    form: FormData | None
    refusal: Response | None = None


def client_ip(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from BROADCAST_FORWARDED_ALLOW_IPS proxies.
    return request.client.host if request.client else "unknown"


async def read_post(request: Request, *, check_csrf: bool = True) -> Posted:
    ctx = pages.ctx_of(request)
    form = await request.form()
    if check_csrf and not csrf.valid(request, form.get(csrf.FIELD), ctx.secret):
        return Posted(None, pages.csrf_failed(request))
    wait = ctx.limits.per_ip.try_acquire(client_ip(request))
    if wait:
        return Posted(None, pages.too_many(request, wait))
    return Posted(form)


def over_limit(ctx: WebContext, keys: list[str]) -> float:
    """Charge one try to each contact key; the longest wait if any is over its limit."""
    waits = [ctx.limits.per_contact.try_acquire(k) for k in keys]
    return max(waits, default=0.0)


def text(form: FormData, name: str) -> str:
    value: Any = form.get(name)
    return value if isinstance(value, str) else ""


def registrant_by_public_id(session: Any, public_id: str) -> Any:
    """The live registrant a link points to, or None (unknown or erased)."""
    from sqlalchemy import select

    from broadcast.store.tables import Registrant

    return session.scalars(
        select(Registrant).where(Registrant.public_id == public_id, Registrant.erased_at.is_(None))
    ).first()
