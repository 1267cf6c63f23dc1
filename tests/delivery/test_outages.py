"""Which server an error is about (`broadcast/cli/outages.py`), from real failed connections:
a closed port, a server that hangs up, PostgreSQL refusing and PostgreSQL cancelling."""

from __future__ import annotations

import smtplib
import socket
import threading

import pytest
import redis
import requests
from sqlalchemy import create_engine, text

from broadcast.cli.outages import unreachable
from broadcast.settings import Settings
from tests.support.servers import free_port


def error_of(action) -> BaseException:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def test_redis_twilio_and_smtp_are_named_without_passwords() -> None:
    port = free_port()  # nothing listens there
    settings = Settings(
        _env_file=None,
        redis_url=f"redis://:broker-pw@127.0.0.1:{port}/0",
        twilio_api_url=f"http://127.0.0.1:{port}",
        smtp_host="127.0.0.1",
        smtp_port=port,
    )
    refused = error_of(lambda: redis.Redis.from_url(settings.redis_url, retry=None).ping())
    line = unreachable(refused, settings)
    assert line == (
        f"could not reach the queue (Redis at redis://:***@127.0.0.1:{port}/0): "
        f"Error 111 connecting to 127.0.0.1:{port}. Connection refused"
    )
    http = error_of(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2))
    assert unreachable(http, settings) == (
        f"could not reach Twilio at http://127.0.0.1:{port}: ConnectionError"
    )
    with socket.socket() as listener:  # accepts, then hangs up before the SMTP greeting
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        settings.smtp_port = listener.getsockname()[1]
        threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True).start()
        dropped = error_of(lambda: smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=5))
    assert unreachable(dropped, settings) == (
        f"could not reach the mail server 127.0.0.1:{settings.smtp_port}: "
        "Connection unexpectedly closed"
    )
    # Anything else is not an outage
    assert unreachable(ValueError("broker-pw"), settings) is None


def test_a_redis_that_refuses_a_command_is_named(redis_url) -> None:  # type: ignore[no-untyped-def]
    refused = error_of(lambda: redis.Redis.from_url(redis_url).execute_command("NO-SUCH"))
    line = unreachable(refused, Settings(_env_file=None, redis_url=redis_url)) or ""
    assert line.startswith(f"the queue (Redis at {redis_url}) refused: unknown command"), line


def test_postgresql_refusing_is_an_outage_a_cancelled_statement_is_not(postgres_url) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    url = f"postgresql+psycopg://someone:db-pw@127.0.0.1:{port}/nowhere"
    settings = Settings(_env_file=None, database_url=url)
    down = create_engine(url)
    refused = error_of(lambda: down.connect())
    line = unreachable(refused, settings) or ""
    assert line.startswith(
        f"could not reach the database at postgresql+psycopg://someone:***@127.0.0.1:{port}"
        "/nowhere: connection failed"
    ), line
    assert "db-pw" not in line
    up = create_engine(postgres_url)
    with up.connect() as conn:
        conn.execute(text("SET statement_timeout = '10ms'"))
        cancelled = error_of(lambda: conn.execute(text("SELECT pg_sleep(1)")))
    assert unreachable(cancelled, Settings(_env_file=None, database_url=postgres_url)) is None
    down.dispose()
    up.dispose()
