"""A real uvicorn server on loopback running the web app, wired to the real SMTP and
Twilio-compatible test servers, with helpers to read what they received."""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlmodel import Session, select

from broadcast.settings import Settings
from broadcast.store.engine import engine_for
from broadcast.store.tables import ConsentLedgerEntry, Registrant, Subscription
from broadcast.web import create_app
from tests.support.forces import default_force
from tests.support.servers import free_port
from tests.support.smtp_server import SmtpTestServer, smtp_test_server
from tests.support.twilio_server import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    TwilioTestServer,
    twilio_test_server,
)

SMS_FROM = "+441632960001"
VOICE_FROM = "+441632960000"
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
# One TLS context for every test client: httpx otherwise builds one (loading the CA bundle) per
# client, 10-40 ms each, and the fuzz tests open a client per example. The URLs are plain http.
TLS = ssl.create_default_context()


@contextmanager
def serve(app: object, port: int) -> Iterator[str]:
    """Run `app` with uvicorn in a thread on 127.0.0.1:port until the block ends."""
    # As in production: uvicorn trusts no forwarded header; the app decides (forwarded_allow_ips).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="uvicorn-test")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@dataclass
class Web:
    """A running app and the servers behind it."""

    url: str
    settings: Settings
    smtp: SmtpTestServer
    twilio: TwilioTestServer

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, follow_redirects=False, timeout=10, verify=TLS)

    def session(self) -> Session:
        return Session(
            default_force(engine_for(self.settings.database_url)), expire_on_commit=False
        )

    def registrant(self, **where: str) -> Registrant | None:
        with self.session() as session:
            statement = select(Registrant)
            for name, value in where.items():
                statement = statement.where(getattr(Registrant, name) == value)
            return session.exec(statement).first()

    def statuses(self, registrant_id: int) -> dict[str, str]:
        with self.session() as session:
            rows = session.exec(
                select(Subscription).where(Subscription.registrant_id == registrant_id)
            )
            return {row.channel: row.status for row in rows}

    def ledger(self, registrant_id: int) -> list[tuple[str, str | None, str]]:
        with self.session() as session:
            rows = session.exec(
                select(ConsentLedgerEntry)
                .where(ConsentLedgerEntry.registrant_id == registrant_id)
                .order_by(ConsentLedgerEntry.id)
            )
            return [(r.event, r.channel, r.source) for r in rows]

    def sms_to(self, number: str) -> list[str]:
        return [
            r.param("Body") or ""
            for r in self.twilio.accepted("Messages")
            if r.param("To") == number
        ]

    def calls_to(self, number: str) -> list[str]:
        return [
            r.param("Twiml") or "" for r in self.twilio.accepted("Calls") if r.param("To") == number
        ]

    def emails_to(self, address: str) -> list[str]:
        out = []
        for received in self.smtp.messages:
            if address in received.rcpt_tos:
                out.append(received.message.get_body(("plain",)).get_content())
        return out


def csrf_token(client: httpx.Client, path: str = "/subscribe") -> str:
    page = client.get(path)
    match = CSRF_RE.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match[1]


def sms_code(text: str) -> str:
    match = re.search(r"your code is (\d{6})", text)
    assert match, text
    return match[1]


def confirm_link(text: str) -> str:
    match = re.search(r"(http://\S+/confirm/\S+)", text)
    assert match, text
    return match[1]


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpTestServer]:
    with smtp_test_server() as server:
        yield server


@pytest.fixture(scope="session")
def twilio() -> Iterator[TwilioTestServer]:
    with twilio_test_server() as server:
        yield server


def web_settings(
    tmp_path: Path, port: int, smtp: SmtpTestServer, twilio: TwilioTestServer, **extra: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'web.db'}",
        "public_url": f"http://127.0.0.1:{port}",
        "force_name": "Test Metropolitan Police",
        "area_postcodes": "E,EC,N,NW,SE,SW,W,WC",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_url": twilio.url,
        "sms_from": SMS_FROM,
        "voice_from": VOICE_FROM,
        "smtp_host": smtp.host,
        "smtp_port": smtp.port,
        "smtp_tls": "none",
        "email_from": "alerts@example.police.uk",
        "outbox_dir": tmp_path / "outbox",
        "web_ip_rate": "1000/1m",
        "web_contact_rate": "50/1h",
        "web_code_rate": "50/1m",
        "web_challenge_after": "100000/1m",  # tests of the challenge set their own
    }
    values.update(extra)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_web(
    tmp_path: Path, smtp: SmtpTestServer, twilio: TwilioTestServer
) -> Iterator[Callable[..., Web]]:
    """Start the app with optional setting overrides; stopped at the end of the test."""
    stack: list[object] = []

    def start(**extra: object) -> Web:
        port = free_port()
        settings = web_settings(tmp_path, port, smtp, twilio, **extra)
        runner = serve(create_app(settings), port)
        url = runner.__enter__()
        stack.append(runner)
        return Web(url, settings, smtp, twilio)

    yield start
    for runner in reversed(stack):
        runner.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
def web(make_web: Callable[..., Web]) -> Web:
    return make_web()


def errors_in(text: str) -> list[str]:
    """The error summary's messages, for assertion output."""
    return re.findall(r'<li><a href="#[a-z_]+">([^<]*)</a></li>', text)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite file, or the shared PostgreSQL test database emptied before and after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'web.db'}"
        return
    from tests.store.conftest import _empty

    url = request.getfixturevalue("postgres_url")
    _empty(url)
    yield url
    _empty(url)
