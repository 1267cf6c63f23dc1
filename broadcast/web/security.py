"""The same safety headers on every response: pages, JSON, /healthz, 404s and server errors.

Pages set their own Content-Security-Policy (with a nonce for their one style block, see
pages.py); everything else gets one that allows nothing. Strict-Transport-Security is sent
when BROADCAST_HSTS says so, by default when BROADCAST_PUBLIC_URL is https.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcast.settings import Settings

BASE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    # Responses may carry a person's data or a link token: no cache keeps them.
    "Cache-Control": "no-store",
}


def hsts_header(settings: Settings) -> str | None:
    enabled = settings.hsts
    if enabled is None:
        enabled = settings.public_url.startswith("https://")
    return f"max-age={settings.hsts_max_age}" if enabled else None


def security_headers(settings: Settings) -> dict[str, str]:
    headers = dict(BASE_HEADERS)
    hsts = hsts_header(settings)
    if hsts:
        headers["Strict-Transport-Security"] = hsts
    return headers


class SecurityHeaders:
    """ASGI middleware: adds each header the response does not set itself.

    A request that raises gets its 500 here, with the headers, before Starlette's outer error
    middleware would answer it bare; the exception still goes on to be logged.
    """

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise
