"""Twilio webhooks: status callbacks, inbound SMS and the voice keypress.

Every request must carry a valid `X-Twilio-Signature` for BROADCAST_PUBLIC_URL + the path (so
it works behind a proxy that rewrites the host), checked by `channels.twilio.webhooks.is_signed`;
otherwise 403 and nothing changes. A signed request seen before is a replay and is refused too:
it is claimed (remembered atomically) before it is handled, and released if handling fails.
On a platform of several forces the request is then handled as the force whose number it is
about (forces.numbers); a number no force has is refused with 403.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends
from sqlmodel import Session
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
from broadcast.delivery import callbacks
from broadcast.delivery.deliver import call_completed
from broadcast.forces import numbers
from broadcast.registrants import keywords
from broadcast.web.context import WebContext
from broadcast.web.deps import Ctx, Refused
from broadcast.web.routing import route_path

router = APIRouter(prefix="/twilio")
T = TypeVar("T")


@dataclass(frozen=True)
class SignedWebhook:
    """A Twilio request whose signature is valid and not seen before (now claimed)."""

    ctx: WebContext
    form: FormData
    fingerprint: str  # the replay claim, released if handling fails so Twilio's retry counts

    def field(self, name: str) -> str:
        value: Any = self.form.get(name)
        return value if isinstance(value, str) else ""

    async def handle(self, work: Callable[[Session], T]) -> T:
        """Run `work(session)` in one transaction; a failure releases the claim for a retry."""
        try:
            return await run_in_threadpool(_run, self.ctx, work)
        except BaseException:
            self.ctx.replays.release(self.fingerprint)
            raise


def _forbidden() -> Response:
    return Response("Forbidden: missing, invalid or replayed Twilio signature", 403)


async def signed_webhook(request: Request, ctx: Ctx) -> SignedWebhook:
    token = ctx.settings.twilio_auth_token
    signature = request.headers.get("x-twilio-signature", "")
    if token is None or not signature:
        raise Refused(_forbidden())
    form = await request.form()
    if any(not isinstance(v, str) for _, v in form.multi_items()):
        raise Refused(_forbidden())
    # The URL Twilio was given: the force's public_url (which may end in /f/<code>) and the path
    # below it.
    url = ctx.settings.public_url.rstrip("/") + route_path(request.scope)
    if request.url.query:
        url += "?" + request.url.query
    if not is_signed(token.get_secret_value(), url, form, signature):
        raise Refused(_forbidden())
    fingerprint = hashlib.sha256(f"{url}\n{signature}".encode()).hexdigest()
    if not ctx.replays.claim(fingerprint):
        raise Refused(_forbidden())
    return SignedWebhook(_numbers_force(ctx, request, form), form, fingerprint)


def _numbers_force(ctx: WebContext, request: Request, form: FormData) -> WebContext:
    """The context of the force whose number the webhook is about (every force shares the
    platform's Twilio account, so the signature alone cannot tell); the URL's force when
    several send on that number. A number no force on the platform has is refused."""
    platform = ctx.platform
    forces = platform.forces()
    if len(forces) == 1:
        return ctx  # a single force: every number the account has is its own
    path = route_path(request.scope)
    number = form.get(numbers.our_number_field(path))
    owner = numbers.owner_of(
        forces,
        lambda f: platform.context(f).settings,
        number if isinstance(number, str) else "",
        chosen=ctx.force,
    )
    if owner is None:
        raise Refused(Response("Forbidden: not a number of any force on this platform", 403))
    return ctx if owner == ctx.force else platform.context(owner)


Signed = Annotated[SignedWebhook, Depends(signed_webhook)]


def _run(ctx: WebContext, work: Callable[[Session], T]) -> T:
    with ctx.session() as session:
        return work(session)


async def _status(hook: SignedWebhook, id_field: str, status_field: str) -> Response:
    ctx = hook.ctx
    provider_id, status = hook.field(id_field), hook.field(status_field)
    code = hook.field("ErrorCode") or None
    await hook.handle(
        lambda s: callbacks.apply_status_callback(s, provider_id, status, code, ctx.key)
    )
    if id_field == "CallSid" and callbacks.delivery_state(status) is not None:
        # The call has ended: give its voice line back to the delivery engine's capacity.
        try:
            await run_in_threadpool(call_completed, ctx.runtime(), provider_id)
        except BaseException:
            ctx.replays.release(hook.fingerprint)
            raise
    return Response(status_code=204)


@router.post("/sms/status")
async def sms_status(hook: Signed) -> Response:
    return await _status(hook, "MessageSid", "MessageStatus")


@router.post("/voice/status")
async def voice_status(hook: Signed) -> Response:
    return await _status(hook, "CallSid", "CallStatus")


@router.post("/sms/inbound")
async def sms_inbound(hook: Signed) -> Response:
    sender, body, settings = hook.field("From"), hook.field("Body"), hook.ctx.settings
    outcome = await hook.handle(
        lambda s: keywords.handle_sms(session=s, from_number=sender, body=body, settings=settings)
    )
    return Response(sms_reply(outcome.reply), media_type=TWIML_MEDIA_TYPE)


@router.post("/voice/gather")
async def voice_gather(hook: Signed) -> Response:
    called, digits, settings = hook.field("To"), hook.field("Digits"), hook.ctx.settings
    outcome = await hook.handle(
        lambda s: keywords.handle_voice_digit(
            session=s, number=called, digits=digits, settings=settings
        )
    )
    return Response(spoken_reply(outcome.reply), media_type=TWIML_MEDIA_TYPE)
