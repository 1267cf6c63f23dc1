"""Rendering web pages: the base layout's branding, the CSRF field and the safety headers."""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from broadcast.web import csrf
from broadcast.web.context import WEB_TEMPLATES, WebContext

templates = Jinja2Templates(directory=str(WEB_TEMPLATES))

# Pages carry personal tokens in their URLs: never cache them, never leak them as a Referer.
# (security.SecurityHeaders adds the rest, and HSTS, to every response.)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def csp(nonce: str) -> str:
    """The pages' policy: their one style block carries this response's nonce; no inline
    style attributes; scripts only our own files (the sign-up challenge, /challenge.js), never
    inline or third-party."""
    return (
        f"default-src 'self'; img-src 'self' https: data:; style-src 'nonce-{nonce}'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def ctx_of(request: Request) -> WebContext:
    """The context of the force the request is for (chosen by web/routing.py)."""
    return request.state.ctx  # type: ignore[no-any-return]


def root(request: Request) -> str:
    """Where this force's pages are on this host: "" or "/f/<code>" (under any root_path the
    server was given). Every link and form action on a page starts with it."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def page(
    request: Request, name: str, status: int = 200, *, csrf_cookie: bool = True, **values: Any
) -> HTMLResponse:
    """Render templates/web/`name` with the branding and a CSRF token for its forms
    (`csrf_cookie=False`: a page with no forms that must not set a cookie)."""
    ctx = ctx_of(request)
    cookie, new = csrf.cookie_value(request)
    nonce = secrets.token_urlsafe(16)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "brand": ctx.branding,
            "settings": ctx.settings,
            "root": root(request),
            "csrf_field": csrf.FIELD,
            "csrf_token": csrf.token_for(cookie, ctx.secret),
            "csp_nonce": nonce,
            **values,
        },
        status_code=status,
        headers=HEADERS | {"Content-Security-Policy": csp(nonce)},
    )
    if new and csrf_cookie:
        csrf.set_cookie(response, cookie, ctx.settings.public_url.startswith("https://"))
    return response


def message(
    request: Request, title: str, text: str, status: int = 200, **values: Any
) -> HTMLResponse:
    """A page with just a heading and a paragraph (done, invalid link, too many tries...)."""
    return page(request, "message.html", status, title=title, text=text, **values)


def invalid_link(request: Request, expired: bool) -> HTMLResponse:
    if expired:
        return message(
            request,
            "This link has expired",
            "Nothing has been changed. Links in our messages stop working after a while for "
            "your safety: use the link in a more recent message, or sign up again.",
            status=400,
        )
    return message(
        request,
        "This link is not valid",
        "Nothing has been changed. Check that you copied the whole link from the message, "
        "or use the link in a more recent message.",
        status=400,
    )


def too_many(request: Request, wait: float) -> HTMLResponse:
    minutes = max(1, round(wait / 60))
    response = message(
        request,
        "Too many attempts",
        f"Please wait {minutes} minute{'s' if minutes != 1 else ''} and try again.",
        status=429,
    )
    response.headers["Retry-After"] = str(max(1, int(wait)))
    return response


def csrf_failed(request: Request) -> HTMLResponse:
    return message(
        request,
        "Your form has expired",
        "For your security we could not accept that form. Go back, reload the page and try again.",
        status=403,
    )
