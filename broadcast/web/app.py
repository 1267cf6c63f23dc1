"""The app factory: `create_app(settings)` wires the routes to the platform's forces (one
WebContext per force, chosen per request by web/routing.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from broadcast import log_scrub
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings, get_settings
from broadcast.store.engine import SchemaBehind
from broadcast.web import metrics, ops, pages
from broadcast.web.context import WebPlatform
from broadcast.web.deps import Refused
from broadcast.web.routes import confirm, manage, subscribe, twilio, unsubscribe
from broadcast.web.routing import ForceRouting, plain_page, route_path
from broadcast.web.security import SecurityHeaders, security_headers


def create_app(settings: Settings) -> FastAPI:
    """The registrants' web app and provider webhooks for every force on the platform (the
    platform's settings; each force's are its profile over them)."""
    # Before anything can log: no token, email or phone number in any log line (docs/security.md).
    log_scrub.install()
    web = WebPlatform(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(web.close)

    app = FastAPI(
        title=f"{settings.force_name} community alerts",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.openapi else None,
    )
    # Innermost first: the force is chosen inside the security headers (its 404 gets them too).
    app.add_middleware(ForceRouting, platform=web)
    app.add_middleware(SecurityHeaders, headers=security_headers(settings))
    app.state.web = web
    if settings.forwarded_allow_ips:
        # Forwarded headers only from the configured proxies; uvicorn's own handling is off
        # (Procfile, `broadcast web`), since it trusts loopback by default.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    for module in (subscribe, confirm, manage, unsubscribe, twilio):
        app.include_router(module.router)
    app.include_router(ops.router)  # /ops, /readyz (operators; docs/operations.md)
    app.include_router(metrics.router)  # /metrics

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> Response:
        """The process is up and serving; /readyz checks the database and Redis."""
        return JSONResponse({"status": "ok"})

    @app.exception_handler(Refused)
    async def refused(_request: Request, exc: Refused) -> Response:
        """A dependency refused the request (an invalid link, a stale form): its page."""
        return exc.response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if route_path(request.scope).startswith("/twilio/"):
            return Response(str(exc.detail), exc.status_code)
        if getattr(request.state, "ctx", None) is None:  # a route of no force (/healthz)
            return plain_page(exc.status_code)
        titles = {404: "Page not found", 405: "Page not found"}
        title = titles.get(exc.status_code, "Something was wrong with that request")
        return pages.message(
            request,
            title,
            "Check the address, or start again from the sign-up page.",
            status=exc.status_code,
        )

    return app


def create_app_from_env() -> FastAPI:
    """The app for the process's settings; the Procfile runs `uvicorn --factory` on this.

    Settings or a key that will not do, or a PostgreSQL schema that `broadcast db upgrade` has
    not brought to head, stop the process with one line, not a traceback.
    """
    try:
        return create_app(get_settings())
    except (ConfigurationError, SchemaBehind) as exc:
        raise SystemExit(f"Error: {exc}") from None
