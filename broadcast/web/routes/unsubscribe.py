"""The List-Unsubscribe target (RFC 8058).

POST with `List-Unsubscribe=One-Click` unsubscribes at once and returns 200: no login, cookie or
redirect, because mail providers send it from their servers (and no per-IP limit: a big mail
provider sends many from few addresses). The signed, expiring token in the
URL is the capability, which is why this form needs no CSRF cookie. A GET only shows a button,
so a mail scanner following the link unsubscribes nobody.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from broadcast.registrants import people as registrants
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.links import LinkClaims
from broadcast.registrants.signup import live_registrant
from broadcast.web import pages
from broadcast.web.context import WebContext
from broadcast.web.deps import Ctx, UnsubscribeLink
from broadcast.web.routes.common import text

router = APIRouter()
ONE_CLICK = "One-Click"
CHANNEL_NAMES = {"email": "emails", "sms": "text messages", "voice": "phone calls"}


def _what(claims: LinkClaims) -> str:
    return CHANNEL_NAMES[claims.channel] if claims.channel else "all alerts"


@router.get("/unsubscribe/{token}")
def unsubscribe_page(request: Request, token: str, claims: UnsubscribeLink) -> Response:
    return pages.page(request, "unsubscribe.html", token=token, what=_what(claims))


@router.post("/unsubscribe/{token}")
async def unsubscribe(request: Request, claims: UnsubscribeLink, ctx: Ctx) -> Response:
    form = await request.form()
    if text(form, "List-Unsubscribe") != ONE_CLICK:
        return pages.message(
            request,
            "Confirm to unsubscribe",
            "Nothing has been changed. Use the button on the unsubscribe page.",
            status=400,
        )
    await run_in_threadpool(_apply, ctx, claims)
    return pages.page(
        request,
        "unsubscribed.html",
        csrf_cookie=False,
        everything=claims.channel is None,
        what=_what(claims),
    )


def _apply(ctx: WebContext, claims: LinkClaims) -> None:
    source = ConsentSource("web", detail="one-click unsubscribe")
    with ctx.session() as session:
        registrant = live_registrant(session, claims.public_id)
        if registrant is not None:
            registrants.unsubscribe(
                session=session,
                registrant=registrant,
                channels=[claims.channel] if claims.channel else None,
                source=source,
                key=ctx.key,
            )
