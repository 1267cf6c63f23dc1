"""`broadcast doctor` against real servers: what works says ok, what is broken says how to fix."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import app
from tests.support.servers import free_port
from tests.support.smtp_server import smtp_test_server
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_test_server

runner = CliRunner()


def doctor(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, dict[str, dict]]:
    from broadcast.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(f"BROADCAST_{name.upper()}", value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["doctor", "--json"])
    return result.exit_code, {c["name"]: c for c in json.loads(result.output)}


def test_everything_configured_and_reachable(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path
) -> None:
    with twilio_test_server() as twilio, smtp_test_server(credentials=("relay", "s3cret")) as smtp:
        code, checks = doctor(
            monkeypatch,
            database_url=f"sqlite:///{tmp_path}/d.db",
            redis_url=redis_url,
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_api_url=twilio.url,
            sms_from="+447700900001",
            voice_from="+442079460000",
            smtp_host="127.0.0.1",
            smtp_port=str(smtp.port),
            smtp_tls="none",
            smtp_username="relay",
            smtp_password="s3cret",
            email_from="alerts@example.org",
            secret_key="x" * 40,
            public_url="https://alerts.example.police.uk",
        )
        sent = [r for r in twilio.requests if r.method == "POST"]
    assert code == 0, checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "secret key": "ok",
        "public url": "ok",
        "database": "warn",
        "redis": "ok",
        "sms capacity": "ok",
        "email capacity": "ok",
        "voice capacity": "ok",
        "sms": "ok",
        "voice": "ok",
        "email": "ok",
    }
    assert "db upgrade" in checks["database"]["fix"]  # an empty database is not migrated yet
    assert sent == [] and smtp.messages == []  # nothing was sent


def test_broken_settings_are_reported_with_a_fix(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    with twilio_test_server() as twilio:
        code, checks = doctor(
            monkeypatch,
            database_url="postgresql+psycopg://nobody@127.0.0.1:1/none",
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token="wrong-token",
            twilio_api_url=twilio.url,
            sms_from="+447700900001",
            smtp_host="127.0.0.1",
            smtp_port=str(free_port()),
            email_from="alerts@example.org",
            voice_rate="lots",
            env="production",
            secret_key="changethis-but-longer",
            public_url="http://localhost:8000",
        )
    assert code == 1
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert failed == {"public url", "database", "redis", "voice capacity", "sms", "voice", "email"}
    assert "BROADCAST_VOICE_FROM" in checks["voice"]["detail"]
    assert all(checks[name]["fix"] for name in failed)
