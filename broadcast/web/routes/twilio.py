"""Twilio webhooks: status callbacks, inbound SMS and the voice keypress.

Every request must carry a valid `X-Twilio-Signature` for BROADCAST_PUBLIC_URL + the path (so
it works behind a proxy that rewrites the host), checked by `channels.twilio.webhooks.is_signed`;
otherwise 403 and nothing changes. A signed request seen before is a replay and is refused too:
it is claimed (remembered atomically) before it is handled, and released if handling fails.
"""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from broadcast.channels.twilio.webhooks import (
    TWIML_MEDIA_TYPE,
    is_signed,
    sms_reply,
    spoken_reply,
)
from broadcast.delivery import inbound
from broadcast.delivery.deliver import call_completed
from broadcast.web import pages

router = APIRouter(prefix="/twilio")


async def _signed(request: Request) -> tuple[FormData | None, str]:
    """The form if the signature is valid and not seen before (now claimed), else None; plus
    the replay fingerprint to release if handling fails."""
    ctx = pages.ctx_of(request)
    token = ctx.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    if token is None or not signature:
        return None, ""
    form = await request.form()
    if any(not isinstance(v, str) for _, v in form.multi_items()):
        return None, ""
    url = ctx.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not is_signed(token.get_secret_value(), url, form, signature):
        return None, ""
    fingerprint = hashlib.sha256(f"{url}\n{signature}".encode()).hexdigest()
    if not ctx.replays.claim(fingerprint):
        return None, ""
    return form, fingerprint


async def _handle(ctx: Any, fingerprint: str, work: Any) -> Any:
    """Run `work(session)` in one transaction; a failure releases the claim for a retry."""
    try:
        return await run_in_threadpool(_run, ctx, work)
    except BaseException:
        ctx.replays.release(fingerprint)
        raise


def _forbidden() -> Response:
    return Response("Forbidden: missing, invalid or replayed Twilio signature", 403)


def _field(form: FormData, name: str) -> str:
    value: Any = form.get(name)
    return value if isinstance(value, str) else ""


def _run(ctx: Any, work: Any) -> Any:
    with ctx.session() as session:
        return work(session)


async def _status(request: Request, id_field: str, status_field: str) -> Response:
    form, fingerprint = await _signed(request)
    if form is None:
        return _forbidden()
    ctx = pages.ctx_of(request)
    provider_id, status = _field(form, id_field), _field(form, status_field)
    code = _field(form, "ErrorCode") or None
    await _handle(
        ctx,
        fingerprint,
        lambda s: inbound.apply_status_callback(s, provider_id, status, code, ctx.key),
    )
    if id_field == "CallSid" and inbound.delivery_state(status) is not None:
        # The call has ended: give its voice line back to the delivery engine's capacity.
        try:
            await run_in_threadpool(call_completed, ctx.runtime(), provider_id)
        except BaseException:
            ctx.replays.release(fingerprint)
            raise
    return Response(status_code=204)


@router.post("/sms/status")
async def sms_status(request: Request) -> Response:
    return await _status(request, "MessageSid", "MessageStatus")


@router.post("/voice/status")
async def voice_status(request: Request) -> Response:
    return await _status(request, "CallSid", "CallStatus")


@router.post("/sms/inbound")
async def sms_inbound(request: Request) -> Response:
    form, fingerprint = await _signed(request)
    if form is None:
        return _forbidden()
    ctx = pages.ctx_of(request)
    sender, body = _field(form, "From"), _field(form, "Body")
    outcome = await _handle(
        ctx,
        fingerprint,
        lambda s: inbound.handle_sms(
            session=s, from_number=sender, body=body, settings=ctx.settings
        ),
    )
    return Response(sms_reply(outcome.reply), media_type=TWIML_MEDIA_TYPE)


@router.post("/voice/gather")
async def voice_gather(request: Request) -> Response:
    form, fingerprint = await _signed(request)
    if form is None:
        return _forbidden()
    ctx = pages.ctx_of(request)
    called, digits = _field(form, "To"), _field(form, "Digits")
    outcome = await _handle(
        ctx,
        fingerprint,
        lambda s: inbound.handle_voice_digit(
            session=s, number=called, digits=digits, settings=ctx.settings
        ),
    )
    return Response(spoken_reply(outcome.reply), media_type=TWIML_MEDIA_TYPE)
