"""`broadcast doctor`: what is wrong with this installation, and how to fix it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

import typer

from broadcast.cli import common
from broadcast.ops.doctor import FAIL, OK, WARN, run_checks
from broadcast.ops.queues import WorkerSeen
from broadcast.settings import Settings

MARKS = {OK: "[green]ok  [/]", WARN: "[yellow]warn[/]", FAIL: "[bold red]FAIL[/]"}


def live_workers(settings: Settings) -> Sequence[WorkerSeen]:
    """The workers whose heartbeats Redis holds (workers/monitor.py's registry)."""
    import redis

    from workers.monitor import RedisMonitor

    assert settings.redis_url
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        return RedisMonitor(client, heartbeat_timeout=settings.ops_heartbeat_timeout).workers()
    finally:
        client.close()


def doctor_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check the database, Redis, SMTP, Twilio and settings; say how to fix what is wrong.

    Nothing is sent: Twilio is asked for one message of the account's list, SMTP gets a
    connection, TLS, login and NOOP. Also checks migrations, capacity settings, the public URL
    and the secret key, the ops token and the trusted proxy (what docs/security.md says to set
    before going live), and, with Redis, that workers are alive. Exit code 1 if anything failed.
    """
    try:
        settings = common.settings()
    except Exception as exc:  # noqa: BLE001 - a broken setting is the first finding
        raise common.fail(f"settings: {exc}") from None
    checks = run_checks(settings, live_workers)
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for check in checks:
            common.console.print(
                f"{MARKS[check.status]} {check.name:<16} {check.detail}", highlight=False
            )
            if check.fix and check.status != OK:
                common.console.print(f"     {'':<16} fix: {check.fix}", highlight=False)
    if any(c.status == FAIL for c in checks):
        raise typer.Exit(1)
