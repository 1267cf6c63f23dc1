"""The same safety headers on every response (pages, JSON, /healthz, 404s, server errors), HSTS
by default on https, no OpenAPI document unless enabled, and a CSP without 'unsafe-inline'."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from broadcast.web import create_app
from tests.support.servers import free_port
from tests.web.conftest import Web, serve, web_settings

SAME_EVERYWHERE = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_safe(response: httpx.Response) -> None:
    for name, value in SAME_EVERYWHERE.items():
        assert response.headers.get(name) == value, (response.request.url, name)
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy


@pytest.fixture
def boom_web(tmp_path, smtp, twilio):  # type: ignore[no-untyped-def]
    """The app with one extra route that fails, as a bug would: a server error."""
    port = free_port()
    settings = web_settings(tmp_path, port, smtp, twilio, public_url="https://alerts.example.org")
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    with serve(app, port) as url:
        yield Web(url, settings, smtp, twilio)


def test_every_response_carries_the_headers_and_hsts_on_https(boom_web: Web) -> None:
    with boom_web.client() as client:
        responses = [
            client.get("/subscribe"),
            client.get("/healthz"),
            client.get("/readyz"),
            client.get("/no-such-page"),
            client.get("/manage/not-a-token"),
            client.get("/manage/not-a-token/data.json"),
            client.post("/subscribe", data={"name": "x"}),  # no CSRF pair: 403
            client.get("/ops"),  # no token: 404
            client.get("/openapi.json"),
            client.get("/boom"),
        ]
    statuses = [r.status_code for r in responses]
    assert statuses[0] == 200 and statuses[-1] == 500 and 404 in statuses and 403 in statuses
    for response in responses:
        assert_safe(response)
        assert response.headers["strict-transport-security"] == "max-age=31536000"


def test_no_openapi_document_unless_enabled(make_web: Callable[..., Web]) -> None:
    with make_web().client() as client:
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
    with make_web(openapi=True).client() as client:
        response = client.get("/openapi.json")
        assert response.status_code == 200 and "/subscribe" in response.json()["paths"]
        assert_safe(response)


@pytest.mark.parametrize(
    ("public_url", "hsts", "sent"),
    [
        ("http://127.0.0.1", None, False),  # the default follows the public URL
        ("http://127.0.0.1", True, True),
        ("https://alerts.example.org", False, False),
    ],
)
def test_hsts_is_a_setting(
    make_web: Callable[..., Web], public_url: str, hsts: bool | None, sent: bool
) -> None:
    web = make_web(public_url=public_url, hsts=hsts)
    with web.client() as client:
        response = client.get("/healthz")
    assert ("strict-transport-security" in response.headers) is sent


def test_pages_allow_only_their_own_style_block(make_web: Callable[..., Web]) -> None:
    web = make_web()
    with web.client() as client:
        page = client.get("/subscribe")
    policy = page.headers["content-security-policy"]
    nonce = re.search(r"style-src 'nonce-([A-Za-z0-9_-]+)'", policy)
    assert nonce, policy
    assert f'<style nonce="{nonce[1]}">' in page.text
    assert " style=" not in page.text  # no inline style attributes left to be blocked
    with web.client() as client:
        again = client.get("/subscribe").headers["content-security-policy"]
    assert again != policy  # a new nonce for each response
