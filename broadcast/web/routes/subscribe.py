"""The sign-up form: GET shows it, POST validates, registers pending channels and sends the
confirmations, then shows the same next page whatever the addresses' history (no enumeration)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from broadcast.registrants import signup
from broadcast.registrants.consent import ConsentSource
from broadcast.store.tables import new_public_id
from broadcast.vocabulary import ChannelName
from broadcast.web import forms, pages
from broadcast.web.context import WEB_TEMPLATES, WebContext
from broadcast.web.deps import CheckedForm, Ctx
from broadcast.web.limits import contact_key
from broadcast.web.routes.common import over_limit, text

router = APIRouter()
CHALLENGE_JS = WEB_TEMPLATES / "challenge.js"


def _form_page(
    request: Request,
    ctx: WebContext,
    result: forms.FormResult,
    status: int = 200,
    challenge: str = "",
) -> Response:
    return pages.page(
        request,
        "subscribe.html",
        status,
        values=result.values,
        errors=result.errors,
        challenge=ctx.challenges.reuse_or_issue(challenge),
        topics=forms.options(ctx.settings.topic_set),
        named_areas=forms.options(ctx.settings.named_area_set),
        wording_version=ctx.settings.consent_wording_version,
    )


def _challenge_message(wait: float) -> str:
    if wait > 0:
        seconds = max(1, round(wait + 0.5))
        return (
            "We are getting a lot of sign-ups just now. Check your details, wait "
            f"{seconds} seconds, then press Sign up again."
        )
    return "Please press Sign up again."


@router.get("/challenge.js", include_in_schema=False)
def challenge_script() -> Response:
    """The first-party script that solves the sign-up challenge (broadcast/web/challenge.py)."""
    return Response(
        CHALLENGE_JS.read_bytes(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/", include_in_schema=False)
def home(request: Request) -> Response:
    return RedirectResponse(f"{pages.root(request)}/subscribe", status_code=303)


@router.get("/subscribe")
def subscribe_form(request: Request, ctx: Ctx) -> Response:
    empty = forms.read({}, lambda _name: [])
    empty["channels"] = ["email"]
    return _form_page(request, ctx, forms.FormResult(empty))


@router.post("/subscribe")
async def subscribe(request: Request, ctx: Ctx, form: CheckedForm) -> Response:
    values = forms.read(form, form.getlist)
    result = forms.parse(values, ctx.settings, elsewhere=ctx.elsewhere)
    challenge = text(form, "challenge")
    if result.draft is None:
        return _form_page(request, ctx, result, 400, challenge)
    draft = result.draft
    if ctx.challenges.required():
        verdict = ctx.challenges.check(challenge, text(form, "proof"))
        if not verdict.ok:
            result.errors = {"challenge": _challenge_message(verdict.wait)}
            return _form_page(request, ctx, result, 400, challenge)
    wait = over_limit(ctx, [contact_key(a, ctx.secret) for a in draft.addresses().values()])
    if wait:
        return pages.too_many(request, wait)
    source = ConsentSource(
        "web", detail="sign-up form", wording_version=ctx.settings.consent_wording_version
    )

    def register() -> signup.SignupOutcome:
        with ctx.session() as session:
            return signup.subscribe(
                session=session, draft=draft, source=source, key=ctx.key, signer=ctx.signer
            )

    try:
        outcome = await run_in_threadpool(register)
    except IntegrityError:
        # Two sign-ups with the same address at the same moment: the other one won.
        decoy = ChannelName.SMS in draft.channels and not signup.email_first(draft)
        outcome = signup.SignupOutcome(new_public_id() if decoy else None)
    # Whatever went out (a confirmation refused for lack of capacity included), the next page is
    # the same: it already says to ask for a new code, or sign up again, if nothing arrives.
    await run_in_threadpool(ctx.confirmations.send_all, outcome.messages)
    channels = sorted(draft.channels)
    if outcome.code_public_id is not None:
        token = ctx.signer.token(outcome.code_public_id, "confirm", ChannelName.SMS)
        others = ",".join(c for c in channels if c != ChannelName.SMS)
        return RedirectResponse(
            f"{pages.root(request)}/confirm/{token}?also={others}", status_code=303
        )
    return pages.page(request, "check.html", channels=channels)
