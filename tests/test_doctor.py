"""`broadcast doctor` against real servers: what works says ok, what is broken says how to fix."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from tests.delivery.processes import start_workers, stop_workers, wait_until
from tests.support.keys import TEST_SECRET_KEY
from tests.support.servers import free_port
from tests.support.smtp_server import smtp_test_server
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_test_server

runner = CliRunner()


@contextmanager
def pool_alive(pool: subprocess.Popen[bytes], redis_url: str, log: Path) -> Iterator[None]:
    """Wait until the pool's heartbeat is in Redis; stop it at the end."""
    import redis

    from workers.monitor import RedisMonitor

    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: bool(RedisMonitor(client).workers()), 60, "a worker heartbeat", log)
        yield
    finally:
        stop_workers(pool)
        client.close()


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
    # Given a worker pool alive on the Redis (the stock dramatiq CLI, its heartbeats registered)
    database = f"sqlite:///{tmp_path}/d.db"
    env = {"BROADCAST_DATABASE_URL": database, "BROADCAST_REDIS_URL": redis_url}
    pool = start_workers(env, tmp_path / "workers.log", threads=1)
    with (
        twilio_test_server() as twilio,
        smtp_test_server(credentials=("relay", "s3cret")) as smtp,
        pool_alive(pool, redis_url, tmp_path / "workers.log"),
    ):
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
            public_url="https://alerts.example.police.uk",
            ops_token=TEST_SECRET_KEY[::-1],
            forwarded_allow_ips="10.0.0.5",
        )
        sent = [r for r in twilio.requests if r.method == "POST"]
    assert code == 0, checks
    assert {name: c["status"] for name, c in checks.items()} == {
        "secret key": "ok",
        "suppression key": "ok",
        "public url": "ok",
        "ops token": "ok",
        "trusted proxy": "ok",
        "database": "warn",
        "redis": "ok",
        "workers": "ok",
        "sms capacity": "ok",
        "email capacity": "ok",
        "voice capacity": "ok",
        "sms": "ok",
        "voice": "ok",
        "email": "ok",
    }
    assert "db upgrade" in checks["database"]["fix"]  # an empty database is not migrated yet
    assert "set from the environment" in checks["secret key"]["detail"]
    assert "1 live worker(s)" in checks["workers"]["detail"]
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
            public_url="http://localhost:8000",
            forwarded_allow_ips="*",
            ops_token="x" * 50,
        )
    assert code == 1
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert failed == {
        "public url",
        "ops token",
        "trusted proxy",
        "database",
        "redis",
        "voice capacity",
        "sms",
        "voice",
        "email",
    }
    assert "BROADCAST_VOICE_FROM" in checks["voice"]["detail"]
    assert all(checks[name]["fix"] for name in failed)
    # A failed Twilio probe says what Twilio answered and where, never the credentials
    detail = checks["sms"]["detail"]
    assert "HTTP 401" in detail and "error 20003" in detail, detail
    assert f"{twilio.url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json" in detail, detail
    assert "wrong-token" not in detail and "PageSize" not in detail


def test_live_workers_are_checked_when_redis_is_configured(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, tmp_path
) -> None:
    # Given Redis but no worker (a database of its own: other tests' heartbeats linger 30 s)
    empty = redis_url.rsplit("/", 1)[0] + "/7"
    code, checks = doctor(monkeypatch, database_url=f"sqlite:///{tmp_path}/d.db", redis_url=empty)
    # Then doctor fails on the workers, not "ok redis" alone
    assert code == 1
    assert checks["redis"]["status"] == "ok"
    assert checks["workers"]["status"] == "fail"
    assert "no live worker" in checks["workers"]["detail"]


def test_a_missing_key_on_postgresql_fails_and_says_how_to_make_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BROADCAST_SECRET_KEY")
    code, checks = doctor(monkeypatch, database_url="postgresql+psycopg://nobody@127.0.0.1:1/x")
    assert code == 1
    assert checks["secret key"]["status"] == "fail"
    assert "secrets.token_urlsafe(32)" in checks["secret key"]["fix"]


def test_the_generated_key_of_an_sqlite_install_is_named_with_its_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.delenv("BROADCAST_SECRET_KEY")
    _, checks = doctor(monkeypatch, database_url=f"sqlite:///{tmp_path}/d.db")
    assert checks["secret key"]["status"] == "warn"
    assert str(tmp_path / "d.db.key") in checks["secret key"]["detail"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("secret_key", "changethis-but-longer"),
        ("secret_key", " changeme "),
        ("secret_key", "development-only-insecure-key "),
        ("smtp_port", "five-eight-seven"),
    ],
)
def test_a_setting_that_fails_validation_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(f"BROADCAST_{name.upper()}", value)
    from broadcast.settings import get_settings

    get_settings.cache_clear()
    for command in (["doctor"], ["config"], ["registrants", "list"]):
        result = runner.invoke(app, command)
        assert result.exit_code != 0, command
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, (command, result.output)
        assert f"BROADCAST_{name.upper()}" in lines[0]
        assert "pydantic" not in lines[0] and value not in lines[0]  # no secret echoed
