"""/ops: the operators' dashboard, and /readyz (docs/operations.md).

/ops answers only with BROADCAST_OPS_TOKEN, as a bearer token or as the password of HTTP basic
auth (what a browser can send); unset, it answers 404 as if it did not exist. The page renders
on the server; a few lines of script re-fetch the panels (/ops/panels) every few seconds, so
there is no build step and the page still shows figures without JavaScript.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from broadcast.capacity import UNIT_NAMES
from broadcast.ops import figures as monitoring_figures
from broadcast.ops.queues import QueueMonitor
from broadcast.vocabulary import CHANNELS
from broadcast.web.context import WebContext
from broadcast.web.deps import Ctx, Refused
from broadcast.web.pages import ctx_of, root, templates

router = APIRouter(include_in_schema=False)
REFRESH_SECONDS = 5
CHART_W, CHART_H = 300, 70


def refusal(request: Request, *, public: bool = False) -> Response | None:
    """None when the request may see operator pages; else the 404 or 401 to send."""
    if public:
        return None
    token = ctx_of(request).settings.ops_token
    expected = token.get_secret_value() if token else ""
    if not expected:
        return Response("Not Found", status_code=404)
    given = _credential(request.headers.get("authorization", ""))
    if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    return Response(
        "Operator token needed",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="broadcast ops", charset="UTF-8"'},
    )


async def operator_only(request: Request) -> None:
    """The dependency of every operator page: refuses with the 404 or 401 of `refusal`."""
    if (refused := refusal(request)) is not None:
        raise Refused(refused)


def _credential(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]  # the user name is free; the password is the token
    return None


def queue_monitor(request: Request, ctx: WebContext) -> QueueMonitor | None:
    """The broker's figures, built on first use. The web app sits on top like cli.py, so it may
    reach the workers' monitor; imported here so the sign-up pages never load Dramatiq."""
    state = request.app.state
    if not hasattr(state, "ops_monitor"):
        from workers.monitor import monitor_for_settings

        state.ops_monitor = monitor_for_settings(ctx.settings)
    return state.ops_monitor  # type: ignore[no-any-return]


async def _snapshot(request: Request, ctx: WebContext) -> dict[str, Any]:
    monitor = queue_monitor(request, ctx)
    view = await run_in_threadpool(monitoring_figures.snapshot, ctx.runtime(), monitor)
    view["charts"] = charts(view["history"])
    # Confirmation SMS caps reached in the last hour (SMS pumping; broadcast/web/sms_caps.py).
    view["sms_caps"] = [asdict(a) for a in ctx.confirmations.caps.alarms()]
    for figure in view["capacity"]:
        figure["unit_plural"] = UNIT_NAMES.get(figure["channel"], ("unit", "units"))[1]
    return view


def charts(history: dict[str, Any]) -> list[dict[str, Any]]:
    """Per channel: SVG polyline points of units sent per minute, and the capacity line's y."""
    out = []
    minutes = history["minutes"]
    for channel in CHANNELS:
        sent = history["sent_per_minute"][channel]
        cap = history["capacity_per_minute"][channel]
        top = max([*sent, cap or 0, 1]) * 1.1
        step = CHART_W / max(1, minutes - 1)
        points = " ".join(
            f"{i * step:.1f},{CHART_H - n / top * CHART_H:.1f}" for i, n in enumerate(sent)
        )
        cap_y = None if cap is None else round(CHART_H - cap / top * CHART_H, 1)
        out.append(
            {
                "channel": channel,
                "points": points,
                "cap_y": cap_y,
                "cap": cap,
                "peak": max(sent),
                "total": sum(sent),
                # What the chart counts: SMS capacity is in segments, not messages.
                "units": UNIT_NAMES.get(channel, ("unit", "units"))[1],
            }
        )
    return out


def _page(
    request: Request, ctx: WebContext, name: str, view: dict[str, Any], nonce: str = ""
) -> HTMLResponse:
    headers = {
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
        ),
    }
    values = {
        "view": view,
        "force": ctx.settings.force_name,
        "root": root(request),  # under /f/<code>/, the panels are that force's too
        "nonce": nonce,
        "refresh": REFRESH_SECONDS,
        "chart_w": CHART_W,
        "chart_h": CHART_H,
    }
    return templates.TemplateResponse(request, name, values, headers=headers)


@router.get("/ops", dependencies=[Depends(operator_only)])
async def dashboard(request: Request, ctx: Ctx) -> Response:
    view = await _snapshot(request, ctx)
    return _page(request, ctx, "ops.html", view, nonce=secrets.token_urlsafe(16))


@router.get("/ops/panels", dependencies=[Depends(operator_only)])
async def panels(request: Request, ctx: Ctx) -> Response:
    return _page(request, ctx, "ops_panels.html", await _snapshot(request, ctx))


@router.get("/ops/data", dependencies=[Depends(operator_only)])
async def data(request: Request, ctx: Ctx) -> Response:
    view = await _snapshot(request, ctx)
    return JSONResponse(view, headers={"Cache-Control": "no-store"})


@router.get("/readyz")
async def readyz(ctx: Ctx) -> Response:
    """Ready when the database and (if configured) Redis answer; says which one does not."""

    def check() -> dict[str, str]:
        status = {"database": "ok", "redis": "not configured"}
        try:
            with ctx.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; details stay in the server's logs
            status["database"] = "unavailable"
        if ctx.settings.redis_url:
            import redis

            client = redis.Redis.from_url(ctx.settings.redis_url, socket_timeout=2)
            try:
                client.ping()
                status["redis"] = "ok"
            except redis.RedisError:
                status["redis"] = "unavailable"
            finally:
                client.close()
        return status

    status = await run_in_threadpool(check)
    ready = "unavailable" not in status.values()
    return JSONResponse(status | {"status": "ok" if ready else "not ready"}, 200 if ready else 503)
