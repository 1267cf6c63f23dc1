"""`broadcast web` serves the app (run for real in a subprocess), and pending channels expire."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import typer
from sqlmodel import select
from typer.testing import CliRunner

from broadcast.cli import web as web_cli
from broadcast.registrants import confirmation
from broadcast.registrants.consent import ConsentSource
from broadcast.store.tables import Registrant, Subscription, SubscriptionStatus, utcnow
from tests.support.servers import free_port
from tests.web.conftest import Web, csrf_token
from tests.web.test_subscribe import MOBILE, signup
from tests.web.test_twilio_webhooks import make_registrant

ROOT = typer.Typer()
ROOT.add_typer(web_cli.app)


@ROOT.callback()
def _root() -> None:
    """A stand-in for cli.py's root app."""


def test_procfile_factory_builds_the_app_from_the_environment(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from broadcast.web.app import create_app_from_env

    monkeypatch.setenv("BROADCAST_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    monkeypatch.setenv("BROADCAST_FORCE_NAME", "Env Police")
    assert create_app_from_env().state.web.settings.force_name == "Env Police"


def test_web_command_help() -> None:
    result = CliRunner().invoke(ROOT, ["web", "--help"])
    assert result.exit_code == 0 and "--port" in result.output


def test_web_command_serves_healthz(tmp_path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "BROADCAST_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    code = (
        "import typer; from broadcast.cli import web; root = typer.Typer(); "
        "root.add_typer(web.app); root.callback()(lambda: None); root()"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, "web", "--port", str(port)],
        env=env,
        cwd=os.getcwd(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "broadcast web did not start"
                time.sleep(0.1)
        assert response.json() == {"status": "ok"}
    finally:
        process.terminate()
        process.wait(10)


def test_pending_channels_expire_and_their_codes_stop_working(make_web) -> None:  # type: ignore[no-untyped-def]
    web: Web = make_web(pending_expiry_hours=1)
    with web.client() as client:
        location = signup(web, client, channels=["sms"]).headers["location"]
        code = web.sms_to(MOBILE)[-1].split("your code is ")[1][:6]
        registrant = web.registrant(mobile=MOBILE)
        assert registrant is not None
        policy = confirmation.Policy(expiry=timedelta(hours=1))
        # Given a pending sign-up, when the sweep runs two hours later
        with web.session() as session:
            assert (
                confirmation.expire_pending(
                    session=session,
                    policy=policy,
                    key=web.settings.suppression_secret,
                    now=utcnow() + timedelta(minutes=30),
                )
                == 0
            )
            expired = confirmation.expire_pending(
                session=session,
                policy=policy,
                key=web.settings.suppression_secret,
                now=utcnow() + timedelta(hours=2),
            )
            session.commit()
        # Then the channel is closed (not suppressed: they may sign up again)
        assert expired == 1
        assert web.statuses(registrant.id) == {"sms": SubscriptionStatus.UNSUBSCRIBED}
        # And the code that was sent no longer works
        response = client.post(
            location, data={"code": code, "csrf_token": csrf_token(client, location)}
        )
        assert "That code is not right" in response.text
        # And signing up again works, with a fresh code
        again = signup(web, client, channels=["sms"])
        assert again.status_code == 303
    assert web.statuses(registrant.id) == {"sms": "pending"}


def test_an_expired_code_is_refused_even_if_right(make_web) -> None:  # type: ignore[no-untyped-def]
    web: Web = make_web()
    rid = make_registrant(web, SubscriptionStatus.PENDING, channels="sms")
    with web.session() as session:
        registrant = session.get(Registrant, rid)
        sub = session.exec(select(Subscription).where(Subscription.registrant_id == rid)).one()
        confirmation.issue(session=session, subscription=sub, secret="123456", key=b"k")
        sub.confirmation_sent_at = utcnow() - timedelta(hours=100)
        session.commit()
        try:
            confirmation.verify(
                session=session,
                registrant=registrant,
                channel="sms",
                secret="123456",
                key=b"k",
                source=ConsentSource("test"),
                policy=confirmation.Policy(),
            )
        except confirmation.ConfirmationFailed as exc:
            assert exc.reason == "expired"
        else:
            raise AssertionError("an expired code was accepted")
