"""Request dependencies (FastAPI `Depends`): the context of the request's force, a checked form,
and each kind of verified link. A dependency that refuses raises `Refused` with the page to
show, so a route only ever sees what it asked for (app.py turns `Refused` back into its page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from broadcast.forces.lookup import force_of_registrant
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


async def _verified(
    request: Request, token: str, purpose: str, channels: tuple[str | None, ...] | None = None
) -> LinkClaims:
    """The link's claims, if it is genuine, for this purpose and channel, and not another
    force's: every force signs with the platform's key, so a registrant of force A on force
    B's pages is refused here with the invalid-link page, as a forged link is. (The store's
    scope alone would make them "not found", which the unsubscribe and code pages must not
    tell apart from a live sign-up or a decoy.)"""
    ctx = pages.ctx_of(request)
    try:
        claims = ctx.signer.verify(token, purpose)
    except InvalidLink as exc:
        raise Refused(pages.invalid_link(request, exc.expired)) from None
    if channels is not None and claims.channel not in channels:
        raise Refused(pages.invalid_link(request, expired=False))
    if len(ctx.platform.forces()) > 1:  # (a single force's links are all its own)
        owner = await run_in_threadpool(force_of_registrant, ctx.engine, claims.public_id)
        if owner is not None and owner != ctx.force.id:
            raise Refused(pages.invalid_link(request, expired=False))
    return claims


async def manage_link(request: Request, token: str) -> LinkClaims:
    return await _verified(request, token, "manage")


async def unsubscribe_link(request: Request, token: str) -> LinkClaims:
    return await _verified(request, token, "unsubscribe", UNSUBSCRIBABLE)


async def confirm_link(request: Request, token: str) -> LinkClaims:
    """An email confirmation link or an SMS code page (a voice call needs no link)."""
    return await _verified(request, token, "confirm", CONFIRMABLE)


ManageLink = Annotated[LinkClaims, Depends(manage_link)]
UnsubscribeLink = Annotated[LinkClaims, Depends(unsubscribe_link)]
ConfirmLink = Annotated[LinkClaims, Depends(confirm_link)]
