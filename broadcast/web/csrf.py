"""CSRF protection for every form: a double-submit token bound to a random cookie.

The cookie holds a random value; each form carries HMAC(secret, cookie). A cross-site page can
make the browser send the cookie but cannot read it, so it cannot produce the matching field.
The cookie is SameSite=Lax and HttpOnly as a second line. Twilio webhooks (signed) and RFC 8058
one-click unsubscribes (no cookie by design; the signed URL is the capability) are exempt.
"""

from __future__ import annotations

import hmac
import re
import secrets

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "broadcast_csrf"
FIELD = "csrf_token"
_VALUE = re.compile(r"^[A-Za-z0-9_-]{32}$")


def cookie_value(request: Request) -> tuple[str, bool]:
    """The request's CSRF cookie value, or a new one; True when it is new and must be set."""
    value = request.cookies.get(COOKIE, "")
    if _VALUE.match(value):
        return value, False
    return secrets.token_urlsafe(24), True


def token_for(value: str, secret: bytes) -> str:
    return hmac.digest(secret, f"csrf:{value}".encode(), "sha256").hex()


def valid(request: Request, form_token: object, secret: bytes) -> bool:
    value = request.cookies.get(COOKIE, "")
    if not _VALUE.match(value) or not isinstance(form_token, str):
        return False
    return hmac.compare_digest(token_for(value, secret), form_token)


def set_cookie(response: Response, value: str, secure: bool) -> None:
    response.set_cookie(
        COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/", max_age=86400
    )
