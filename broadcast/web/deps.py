"""Request dependencies (FastAPI `Depends`): the app's context, a checked form, and each kind of
verified link. A dependency that refuses raises `Refused` with the page to show, so a route only
ever sees what it asked for (app.py turns `Refused` back into its page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from broadcast.registrants.links import InvalidLink, LinkClaims
from broadcast.vocabulary import ChannelName
from broadcast.web import csrf, pages
from broadcast.web.context import WebContext

# The channels each link may name; None: a link for every channel.
CONFIRMABLE = (ChannelName.EMAIL, ChannelName.SMS)
UNSUBSCRIBABLE = (None, ChannelName.EMAIL, ChannelName.SMS, ChannelName.VOICE)


class Refused(Exception):
    """A dependency's answer in place of the route's: `response` is the page to show."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def context(request: Request) -> WebContext:
    return pages.ctx_of(request)


Ctx = Annotated[WebContext, Depends(context)]


def client_ip(request: Request) -> str:
    # uvicorn has already applied X-Forwarded-For from BROADCAST_FORWARDED_ALLOW_IPS proxies.
    return request.client.host if request.client else "unknown"


async def checked_form(request: Request) -> FormData:
    """The posted form, once it has passed the CSRF check and the per-IP limit."""
    ctx = pages.ctx_of(request)
    form = await request.form()
    if not csrf.valid(request, form.get(csrf.FIELD), ctx.secret):
        raise Refused(pages.csrf_failed(request))
    wait = ctx.limits.per_ip.try_acquire(client_ip(request))
    if wait:
        raise Refused(pages.too_many(request, wait))
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def _verified(
    request: Request, token: str, purpose: str, channels: tuple[str | None, ...] | None = None
) -> LinkClaims:
    try:
        claims = pages.ctx_of(request).signer.verify(token, purpose)
    except InvalidLink as exc:
        raise Refused(pages.invalid_link(request, exc.expired)) from None
    if channels is not None and claims.channel not in channels:
        raise Refused(pages.invalid_link(request, expired=False))
    return claims


async def manage_link(request: Request, token: str) -> LinkClaims:
    return _verified(request, token, "manage")


async def unsubscribe_link(request: Request, token: str) -> LinkClaims:
    return _verified(request, token, "unsubscribe", UNSUBSCRIBABLE)


async def confirm_link(request: Request, token: str) -> LinkClaims:
    """An email confirmation link or an SMS code page (a voice call needs no link)."""
    return _verified(request, token, "confirm", CONFIRMABLE)


ManageLink = Annotated[LinkClaims, Depends(manage_link)]
UnsubscribeLink = Annotated[LinkClaims, Depends(unsubscribe_link)]
ConfirmLink = Annotated[LinkClaims, Depends(confirm_link)]
