"""Real servers for tests: a private redis-server and a throwaway PostgreSQL database.

Nothing here fakes a server. When a server cannot be had, the fixture fails with a message that
says what is missing and how to provide it, instead of letting the tests pass silently.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server of our own on a free loopback port, or BROADCAST_TEST_REDIS_URL if set."""
    given = os.environ.get("BROADCAST_TEST_REDIS_URL")
    if given:
        client = redis.Redis.from_url(given)
        try:
            client.ping()
        except redis.RedisError as exc:
            raise RuntimeError(f"BROADCAST_TEST_REDIS_URL={given} is not reachable: {exc}") from exc
        client.flushdb()
        yield given
        client.flushdb()
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: install it (Debian: apt-get install redis-server) "
            "or point BROADCAST_TEST_REDIS_URL at a Redis the tests may flush"
        )
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="broadcast-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def throwaway_postgres_database() -> Iterator[str]:
    """Create a uniquely named database on the test PostgreSQL server; drop it afterwards."""
    admin_url = make_url(os.environ.get("BROADCAST_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"broadcast_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise RuntimeError(
            f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is not reachable "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0]}); start PostgreSQL or set "
            "BROADCAST_TEST_POSTGRES_URL to a server where the tests may create databases"
        ) from exc
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
