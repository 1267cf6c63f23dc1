"""The manage page behind a signed link: amend details, areas, topics and channels, unsubscribe
from one channel or all, download everything held (JSON), or erase it all."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from broadcast.delivery import quiet_hours
from broadcast.errors import BroadcastError, Conflict
from broadcast.registrants import people as registrants
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.links import InvalidLink, LinkClaims
from broadcast.store.tables import SubscriptionStatus
from broadcast.web import forms, pages
from broadcast.web.manage_ops import save_changes
from broadcast.web.routes.common import read_post, registrant_by_public_id, text

router = APIRouter()
SOURCE = ConsentSource("web", detail="manage page")


def _claims(request: Request, token: str) -> LinkClaims | Response:
    try:
        return pages.ctx_of(request).signer.verify(token, "manage")
    except InvalidLink as exc:
        return pages.invalid_link(request, exc.expired)


def _current(ctx: Any, public_id: str) -> dict[str, Any] | None:
    with ctx.session() as session:
        registrant = registrant_by_public_id(session, public_id)
        if registrant is None:
            return None
        view = registrants.export(session=session, registrant=registrant)
        return view | {"quiet_hours": registrant.quiet_hours}  # docs/lifecycle.md


def _values(view: dict[str, Any], named: frozenset[str]) -> dict[str, Any]:
    live = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING)
    return {
        "name": view["name"] or "",
        "postcode": view["postcode"] or "",
        "email": view["email"] or "",
        "mobile": view["mobile"] or "",
        "landline": view["landline"] or "",
        "areas": ", ".join(a for a in view["areas"] if a not in named),
        "named_areas": [a for a in view["areas"] if a in named],
        "topics": view["topics"],
        "channels": [c for c, s in view["channels"].items() if s in live],
        "consent": True,
    }


def _form(
    request: Request, token: str, view: dict[str, Any], status: int = 200, **extra: Any
) -> Response:
    ctx = pages.ctx_of(request)
    extra.setdefault("values", _values(view, ctx.settings.named_area_set))
    return pages.page(
        request,
        "manage.html",
        status,
        token=token,
        statuses=view["channels"],
        topics=forms.options(ctx.settings.topic_set),
        named_areas=forms.options(ctx.settings.named_area_set),
        errors=extra.pop("errors", {}),
        quiet_hours=view.get("quiet_hours"),
        quiet_default=ctx.settings.quiet_hours,
        **extra,
    )


@router.get("/manage/{token}")
async def manage_page(request: Request, token: str) -> Response:
    claims = _claims(request, token)
    if isinstance(claims, Response):
        return claims
    view = await run_in_threadpool(_current, pages.ctx_of(request), claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    return _form(request, token, view)


@router.get("/manage/{token}/data.json")
async def download(request: Request, token: str) -> Response:
    claims = _claims(request, token)
    if isinstance(claims, Response):
        return claims
    view = await run_in_threadpool(_current, pages.ctx_of(request), claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    view.pop("id", None)  # the database id is ours, not theirs, and must not leave
    return Response(
        json.dumps(view, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={
            **pages.HEADERS,
            "Content-Disposition": 'attachment; filename="my-alerts-data.json"',
        },
    )


@router.post("/manage/{token}")
async def manage(request: Request, token: str) -> Response:
    claims = _claims(request, token)
    if isinstance(claims, Response):
        return claims
    posted = await read_post(request)
    if posted.form is None:
        return posted.refusal  # type: ignore[return-value]
    ctx = pages.ctx_of(request)
    action = text(posted.form, "action")
    view = await run_in_threadpool(_current, ctx, claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    if action in ("unsubscribe", "unsubscribe_all"):
        channel = text(posted.form, "channel")
        wanted = None if action == "unsubscribe_all" else [channel]
        if wanted and channel not in forms.CHANNELS:
            return _form(request, token, view, 400, notice="Choose a channel to stop.")
        await run_in_threadpool(_unsubscribe, ctx, claims.public_id, wanted)
        return pages.page(
            request,
            "unsubscribed.html",
            everything=wanted is None,
            manage_url=f"/manage/{token}",
        )
    if action == "erase":
        if text(posted.form, "confirm_erase") != "yes":
            return _form(
                request,
                token,
                view,
                400,
                errors={"confirm_erase": "Tick the box to confirm you want everything deleted"},
            )
        await run_in_threadpool(_erase, ctx, claims.public_id)
        return pages.message(
            request,
            "Your details have been deleted",
            f"{ctx.settings.force_name} no longer holds your name, postcode, email address or "
            "phone numbers, and will not contact you again. You can sign up again at any time.",
        )
    if (
        action == "quiet_hours"
    ):  # routine calls held in these hours (broadcast/delivery/quiet_hours.py)
        error = await run_in_threadpool(
            _quiet_hours, ctx, claims.public_id, text(posted.form, "quiet_hours")
        )
        view = await run_in_threadpool(_current, ctx, claims.public_id) or view
        if error:
            return _form(request, token, view, 400, errors={"quiet_hours": error})
        return _form(request, token, view, notice="Your quiet hours have been saved.")
    if action != "save":
        return _form(request, token, view, 400)
    result = forms.parse(
        forms.read(posted.form, posted.form.getlist), ctx.settings, require_consent=False
    )
    if result.draft is None:
        return _form(request, token, view, 400, values=result.values, errors=result.errors)
    try:
        messages = await run_in_threadpool(
            save_changes, ctx, claims.public_id, result.draft, SOURCE
        )
    except Conflict:
        errors = {
            "email": "That email address or phone number cannot be used here. Use another one."
        }
        return _form(request, token, view, 400, values=result.values, errors=errors)
    except BroadcastError as exc:
        return _form(request, token, view, 400, values=result.values, errors={"channels": str(exc)})
    await run_in_threadpool(ctx.confirmations.send_all, messages)
    view = await run_in_threadpool(_current, ctx, claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    pending = [m.channel for m in messages]
    return _form(request, token, view, notice="Your changes have been saved.", sent=pending)


def _unsubscribe(ctx: Any, public_id: str, channels: list[str] | None) -> None:
    with ctx.session() as session:
        registrant = registrant_by_public_id(session, public_id)
        if registrant is not None:
            registrants.unsubscribe(
                session=session,
                registrant=registrant,
                channels=channels,
                source=SOURCE,
                key=ctx.key,
            )


def _erase(ctx: Any, public_id: str) -> None:
    with ctx.session() as session:
        registrant = registrant_by_public_id(session, public_id)
        if registrant is not None:
            registrants.erase(session=session, registrant=registrant, source=SOURCE, key=ctx.key)


def _quiet_hours(ctx: Any, public_id: str, value: str) -> str | None:
    """Save the registrant's quiet hours; an error message for the form, or None."""
    with ctx.session() as session:
        registrant = registrant_by_public_id(session, public_id)
        if registrant is None:
            return None
        try:
            quiet_hours.set_preference(session=session, registrant=registrant, text=value)
        except BroadcastError as exc:
            return str(exc)
        session.commit()
    return None
