"""Double opt-in pages: the email link (GET shows a button, POST confirms, so mail scanners that
follow links confirm nothing) and the SMS code form (enter the code, or ask for a new one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from broadcast.delivery.confirmations import capacity_wait
from broadcast.registrants import signup
from broadcast.registrants.links import LinkClaims
from broadcast.registrants.signup import PendingMessage
from broadcast.vocabulary import ChannelName
from broadcast.web import pages
from broadcast.web.context import WebContext
from broadcast.web.deps import CheckedForm, ConfirmLink, Ctx
from broadcast.web.routes.common import in_minutes, over_limit, text

router = APIRouter()
# "... get community alerts by text message."
CHANNEL_WORDS = {"email": "by email", "sms": "by text message", "voice": "by phone"}


def _code_page(request: Request, token: str, status: int = 200, **values: Any) -> Response:
    also = [c for c in request.query_params.get("also", "").split(",") if c in CHANNEL_WORDS]
    return pages.page(
        request,
        "code.html",
        status,
        token=token,
        also=also,
        **values,
    )


def _busy_notice(wait: float) -> str:
    return (
        "We could not send a new code just now because we are sending a lot of messages. "
        f"Please ask again in {in_minutes(wait)}."
    )


@router.get("/confirm/{token}")
def confirm_page(request: Request, token: str, claims: ConfirmLink) -> Response:
    if claims.channel == ChannelName.SMS:
        return _code_page(request, token)
    return pages.page(request, "confirm_email.html", token=token)


@router.post("/confirm/{token}")
async def confirm(
    request: Request, token: str, claims: ConfirmLink, ctx: Ctx, form: CheckedForm
) -> Response:
    if text(form, "action") == "resend" and claims.channel == ChannelName.SMS:
        wait = over_limit(ctx, [f"resend:{claims.public_id}"])
        if wait:
            return pages.too_many(request, wait)
        busy = await run_in_threadpool(_resend, ctx, claims.public_id)
        if busy is not None:
            return _code_page(request, token, notice=_busy_notice(busy))
        return _code_page(request, token, notice="We have sent you a new code.")
    wait = ctx.limits.per_code.try_acquire(claims.public_id)
    if wait:
        return pages.too_many(request, wait)
    secret = token if claims.channel == ChannelName.EMAIL else text(form, "code")
    failure, held_code = await run_in_threadpool(_verify, ctx, claims, secret)
    if failure is None:
        code_url = code_busy = None
        # Links on the page stay on the host and prefix it was opened at (pages.root).
        here = pages.root(request)
        if held_code is not None:  # email first: the SMS code goes out now (signup.py)
            sent = await run_in_threadpool(ctx.confirmations.send, held_code)
            code_token = ctx.signer.token(claims.public_id, "confirm", ChannelName.SMS)
            code_url = f"{here}/confirm/{code_token}"
            code_busy = in_minutes(sent.busy_for) if sent.busy_for is not None else None
        return pages.page(
            request,
            "confirmed.html",
            channel=CHANNEL_WORDS[claims.channel or "email"],
            manage_url=f"{here}/manage/{ctx.signer.token(claims.public_id, 'manage')}",
            code_url=code_url,
            code_busy=code_busy,
        )
    if claims.channel == ChannelName.EMAIL:
        return pages.message(
            request,
            "This link has already been used or has expired"
            if failure != "wrong"
            else "This link is not valid",
            "Nothing has been changed. If you have already confirmed, you will get alerts. "
            "Otherwise, sign up again to get a new link.",
            status=400,
        )
    errors = {
        "wrong": "That code is not right. Check the text message and try again.",
        "locked": "Too many wrong codes. Ask for a new code below.",
        "expired": "That code has expired. Ask for a new code below, or sign up again.",
        "not-pending": "That code is not right. Check the text message and try again.",
    }
    return _code_page(request, token, 400, error=errors[failure])


def _verify(
    ctx: WebContext, claims: LinkClaims, secret: str
) -> tuple[str | None, PendingMessage | None]:
    with ctx.session() as session:
        return signup.confirm(
            session=session,
            claims=claims,
            secret=secret,
            key=ctx.key,
            policy=ctx.policy,
            signer=ctx.signer,
        )


def _resend(ctx: WebContext, public_id: str) -> float | None:
    """Send a new code if one is due; seconds until SMS has room when it had none, else None.

    With no code due (a decoy page, a sign-up that is not pending) the channel's capacity still
    decides the answer, so the page says the same as it would for a real sign-up.
    """
    with ctx.session() as session:
        message = signup.resend_code(
            session=session, public_id=public_id, key=ctx.key, signer=ctx.signer
        )
    if message is None:
        return capacity_wait(ctx.runtime(), ChannelName.SMS)
    return ctx.confirmations.send(message).busy_for
