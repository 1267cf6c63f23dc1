"""Which force a request is for, chosen before any route runs (an ASGI middleware).

1. A path under `/f/<code>/` is force `<code>`'s, on any host (a shared host): the prefix
   becomes the request's `root_path`, so the routes see `/subscribe` and the pages' links and
   form actions keep the prefix (pages.root).
2. Else the `Host` header, matched against the forces' hosts (forces.registry.host_owner).
3. Else the force BROADCAST_FORCE names, else the only force there is: a single-force install,
   with no hosts, answers on every host as before.
4. Else, for the platform's own routes (Twilio webhooks, /ops, /metrics, /readyz), the
   platform's first force (WebPlatform.home); for a registrant's page, a plain 404 that names
   no force.

The chosen force's WebContext is put in the request's state (pages.ctx_of). /healthz has
none: it answers without reading the force list. docs/web.md.
"""

from __future__ import annotations

import re

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from broadcast.forces.registry import ForceInfo, host_owner
from broadcast.web.context import WebPlatform

PREFIX = re.compile(r"^/f/([a-z][a-z0-9-]{1,39})(?=/|$)")
# The platform's own routes: they answer on any host (a load balancer's check, a scraper).
PLATFORM_PATHS = ("/twilio/", "/ops", "/readyz", "/metrics", "/openapi.json")
UNSCOPED = frozenset({"/healthz"})
PLAIN = (
    '<!DOCTYPE html>\n<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
    "<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n"
    "<p>Check the address you were given.</p>\n</body>\n</html>\n"
)
PLAIN_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}


def plain_page(status: int = 404) -> HTMLResponse:
    """An error page of no force (no name, logo or cookie): for a host no force claims, and for
    an error on a route that has no force (/healthz)."""
    title = "Page not found" if status in (404, 405) else "Something was wrong with that request"
    return HTMLResponse(PLAIN.format(title=title), status, headers=PLAIN_HEADERS)


def route_path(scope: Scope) -> str:
    """The path below the app's root_path (what the routes match), as Starlette reads it."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :]
    return path


def host_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return str(value.decode("latin-1"))
    return ""


def choose(
    forces: list[ForceInfo], path: str, host: str, *, named: str | None, home: ForceInfo
) -> tuple[ForceInfo | None, str]:
    """(the force a request is for, the path prefix that chose it), or (None, "") for a 404."""
    prefixed = PREFIX.match(path)
    if prefixed is not None:
        code = prefixed[1]
        force = next((f for f in forces if f.code == code), None)
        return (force, prefixed[0]) if force is not None else (None, "")
    owner = host_owner(forces, host)
    if owner is not None:
        return owner, ""
    if named:
        return next((f for f in forces if f.code == named), home), ""
    if len(forces) == 1:
        return forces[0], ""
    if path.startswith(PLATFORM_PATHS):
        return home, ""
    return None, ""


class ForceRouting:
    """Puts the request's force context in its state, or answers 404 (see the module)."""

    def __init__(self, app: ASGIApp, platform: WebPlatform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path in UNSCOPED:
            await self.app(scope, receive, send)
            return
        platform = self.platform
        if platform.stale():
            await run_in_threadpool(platform.refresh)
        force, prefix = choose(
            platform.forces(),
            path,
            host_of(scope),
            named=platform.settings.force,
            home=platform.home,
        )
        if force is None:
            await plain_page(404)(scope, receive, send)
            return
        state = {**scope.get("state", {}), "ctx": platform.context(force)}
        root = scope.get("root_path", "") + prefix
        await self.app({**scope, "root_path": root, "state": state}, receive, send)
