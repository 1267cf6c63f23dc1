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
from broadcast.registrants.manage import save_changes
from broadcast.registrants.signup import PendingMessage, live_registrant
from broadcast.registrants.validation import RegistrantDraft
from broadcast.store.tables import SubscriptionStatus
from broadcast.web import forms, pages
from broadcast.web.context import WebContext
from broadcast.web.deps import CheckedForm, Ctx, ManageLink
from broadcast.web.routes.common import busy_for, in_minutes, text

router = APIRouter()
SOURCE = ConsentSource("web", detail="manage page")


def _current(ctx: WebContext, public_id: str) -> dict[str, Any] | None:
    with ctx.session() as session:
        registrant = live_registrant(session, public_id)
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
    request: Request,
    ctx: WebContext,
    token: str,
    view: dict[str, Any],
    status: int = 200,
    **extra: Any,
) -> Response:
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
async def manage_page(request: Request, token: str, claims: ManageLink, ctx: Ctx) -> Response:
    view = await run_in_threadpool(_current, ctx, claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    return _form(request, ctx, token, view)


@router.get("/manage/{token}/data.json")
async def download(request: Request, claims: ManageLink, ctx: Ctx) -> Response:
    view = await run_in_threadpool(_current, ctx, claims.public_id)
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
async def manage(
    request: Request, token: str, claims: ManageLink, ctx: Ctx, form: CheckedForm
) -> Response:
    action = text(form, "action")
    view = await run_in_threadpool(_current, ctx, claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    if action in ("unsubscribe", "unsubscribe_all"):
        channel = text(form, "channel")
        wanted = None if action == "unsubscribe_all" else [channel]
        if wanted and channel not in forms.CHANNELS:
            return _form(request, ctx, token, view, 400, notice="Choose a channel to stop.")
        await run_in_threadpool(_unsubscribe, ctx, claims.public_id, wanted)
        return pages.page(
            request,
            "unsubscribed.html",
            everything=wanted is None,
            manage_url=f"{pages.root(request)}/manage/{token}",
        )
    if action == "erase":
        if text(form, "confirm_erase") != "yes":
            return _form(
                request,
                ctx,
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
            _quiet_hours, ctx, claims.public_id, text(form, "quiet_hours")
        )
        view = await run_in_threadpool(_current, ctx, claims.public_id) or view
        if error:
            return _form(request, ctx, token, view, 400, errors={"quiet_hours": error})
        return _form(request, ctx, token, view, notice="Your quiet hours have been saved.")
    if action != "save":
        return _form(request, ctx, token, view, 400)
    values = forms.read(form, form.getlist)
    result = forms.parse(values, ctx.settings, require_consent=False, elsewhere=ctx.elsewhere)
    if result.draft is None:
        return _form(request, ctx, token, view, 400, values=result.values, errors=result.errors)
    try:
        messages = await run_in_threadpool(_save, ctx, claims.public_id, result.draft)
    except Conflict:
        errors = {
            "email": "That email address or phone number cannot be used here. Use another one."
        }
        return _form(request, ctx, token, view, 400, values=result.values, errors=errors)
    except BroadcastError as exc:
        return _form(
            request, ctx, token, view, 400, values=result.values, errors={"channels": str(exc)}
        )
    results = await run_in_threadpool(ctx.confirmations.send_all, messages)
    view = await run_in_threadpool(_current, ctx, claims.public_id)
    if view is None:
        return pages.invalid_link(request, expired=False)
    busy = busy_for(results)
    if busy is not None:
        # The link proved who they are, so the page may say what did not go out, and how to
        # get it: a sign-up with the same details sends a fresh confirmation (signup.reopen).
        notice = (
            "Your changes have been saved. We could not send every message to confirm a new "
            "way to contact you just now, because we are sending a lot of messages. In "
            f"{in_minutes(busy)}, sign up again with the same details to get one."
        )
        return _form(request, ctx, token, view, notice=notice)
    pending = [m.channel for m in messages]
    return _form(request, ctx, token, view, notice="Your changes have been saved.", sent=pending)


def _save(ctx: WebContext, public_id: str, draft: RegistrantDraft) -> list[PendingMessage]:
    with ctx.session() as session:
        return save_changes(
            session=session,
            public_id=public_id,
            draft=draft,
            source=SOURCE,
            key=ctx.key,
            signer=ctx.signer,
        )


def _unsubscribe(ctx: WebContext, public_id: str, channels: list[str] | None) -> None:
    with ctx.session() as session:
        registrant = live_registrant(session, public_id)
        if registrant is not None:
            registrants.unsubscribe(
                session=session,
                registrant=registrant,
                channels=channels,
                source=SOURCE,
                key=ctx.key,
            )


def _erase(ctx: WebContext, public_id: str) -> None:
    with ctx.session() as session:
        registrant = live_registrant(session, public_id)
        if registrant is not None:
            registrants.erase(session=session, registrant=registrant, source=SOURCE, key=ctx.key)


def _quiet_hours(ctx: WebContext, public_id: str, value: str) -> str | None:
    """Save the registrant's quiet hours; an error message for the form, or None."""
    with ctx.session() as session:
        registrant = live_registrant(session, public_id)
        if registrant is None:
            return None
        try:
            quiet_hours.set_preference(session=session, registrant=registrant, text=value)
        except BroadcastError as exc:
            return str(exc)
        session.commit()
    return None
