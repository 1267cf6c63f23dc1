"""Double opt-in pages: the email link (GET shows a button, POST confirms, so mail scanners that
follow links confirm nothing) and the SMS code form (enter the code, or ask for a new one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from broadcast.registrants import confirmation
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.links import InvalidLink, LinkClaims
from broadcast.store.tables import Channel, Registrant
from broadcast.web import pages, signup
from broadcast.web.messages import PendingMessage
from broadcast.web.routes.common import over_limit, read_post, text

router = APIRouter()
# "... get community alerts by text message."
CHANNEL_WORDS = {"email": "by email", "sms": "by text message", "voice": "by phone"}


def _claims(request: Request, token: str) -> LinkClaims | Response:
    try:
        claims = pages.ctx_of(request).signer.verify(token, "confirm")
    except InvalidLink as exc:
        return pages.invalid_link(request, exc.expired)
    if claims.channel not in (Channel.EMAIL, Channel.SMS):
        return pages.invalid_link(request, expired=False)
    return claims


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


@router.get("/confirm/{token}")
def confirm_page(request: Request, token: str) -> Response:
    claims = _claims(request, token)
    if isinstance(claims, Response):
        return claims
    if claims.channel == Channel.SMS:
        return _code_page(request, token)
    return pages.page(request, "confirm_email.html", token=token)


@router.post("/confirm/{token}")
async def confirm(request: Request, token: str) -> Response:
    claims = _claims(request, token)
    if isinstance(claims, Response):
        return claims
    posted = await read_post(request)
    if posted.form is None:
        return posted.refusal  # type: ignore[return-value]
    ctx = pages.ctx_of(request)
    if text(posted.form, "action") == "resend" and claims.channel == Channel.SMS:
        wait = over_limit(ctx, [f"resend:{claims.public_id}"])
        if wait:
            return pages.too_many(request, wait)
        message = await run_in_threadpool(_resend, ctx, claims.public_id)
        if message is not None:
            await run_in_threadpool(ctx.confirmations.send, message)
        return _code_page(request, token, notice="We have sent you a new code.")
    wait = ctx.limits.per_code.try_acquire(claims.public_id)
    if wait:
        return pages.too_many(request, wait)
    secret = token if claims.channel == Channel.EMAIL else text(posted.form, "code")
    failure, held_code = await run_in_threadpool(_verify, ctx, claims, secret)
    if failure is None:
        code_url = None
        if held_code is not None:  # email first: the SMS code goes out now (signup.py)
            await run_in_threadpool(ctx.confirmations.send, held_code)
            code_url = "/confirm/" + ctx.signer.token(claims.public_id, "confirm", Channel.SMS)
        return pages.page(
            request,
            "confirmed.html",
            channel=CHANNEL_WORDS[claims.channel or "email"],
            manage_url=ctx.signer.url(claims.public_id, "manage"),
            code_url=code_url,
        )
    if claims.channel == Channel.EMAIL:
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


def _registrant(session: Session, public_id: str) -> Registrant | None:
    return session.scalars(
        select(Registrant).where(Registrant.public_id == public_id, Registrant.erased_at.is_(None))
    ).first()


def _verify(ctx, claims: LinkClaims, secret: str) -> tuple[str | None, PendingMessage | None]:  # type: ignore[no-untyped-def]
    """(None, the SMS code held back for email first, if any) when confirmed, else (why not,
    None). Unknown sign-ups fail exactly like a wrong code."""
    assert claims.channel is not None  # _claims lets only email and SMS links through
    source = ConsentSource("web", detail=f"confirmed by {claims.channel}")
    with ctx.session() as session:
        registrant = _registrant(session, claims.public_id)
        if registrant is None:
            return "wrong", None
        try:
            confirmation.verify(
                session=session,
                registrant=registrant,
                channel=claims.channel,
                secret=secret,
                key=ctx.key,
                source=source,
                policy=ctx.policy,
            )
        except confirmation.ConfirmationFailed as exc:
            return exc.reason, None
        if claims.channel != Channel.EMAIL:
            return None, None
        held = signup.after_email_confirmed(
            session=session, registrant=registrant, key=ctx.key, signer=ctx.signer
        )
    return None, held


def _resend(ctx, public_id: str) -> PendingMessage | None:  # type: ignore[no-untyped-def]
    with ctx.session() as session:
        registrant = _registrant(session, public_id)
        if registrant is None:
            return None
        return signup.prepare(
            session=session,
            registrant=registrant,
            channel=Channel.SMS,
            key=ctx.key,
            signer=ctx.signer,
        )
