"""Dramatiq workers. Importing this package sets the broker (Redis when BROADCAST_REDIS_URL is
set, else the stub broker) and registers every actor, so the stock CLI works:

    dramatiq workers --queues voice_urgent voice --processes 1 --threads 4
"""

from __future__ import annotations

import contextlib
import threading

import dramatiq

from broadcast import log_scrub
from broadcast.errors import ConfigurationError
from broadcast.forces.choose import platform_base
from broadcast.runtime import Runtime
from broadcast.settings import Settings, get_settings
from broadcast.store.engine import SchemaBehind, engine_for, migrated_on_first_use
from workers.app import WorkerApp
from workers.broker import build_broker, worker_id_of
from workers.monitor import add_prometheus, add_worker_registry

_runtime: Runtime | None = None
_lock = threading.Lock()


def _checked_settings() -> Settings:
    """Workers sign the links in every message: without a real key (or with a setting that
    fails), stop with one line naming the setting instead of a traceback per message."""
    try:
        settings = get_settings()
        if settings.key_source.kind == "missing":
            # (A kept key of an SQLite install is read, or made, when first needed: importing
            # the package must not write files.)
            settings.link_key()
    except ConfigurationError as exc:
        raise SystemExit(f"Error: {exc}") from None
    return settings


def exit_unless_schema_at_head() -> None:
    """A PostgreSQL schema behind the code stops the process with one line, before any work:
    `broadcast db upgrade` (the Procfile's `release:`) is the step that moves it. An SQLite
    database is left to be migrated on first use, as before (broadcast.store.engine)."""
    url = get_settings().database_url
    if migrated_on_first_use(url):
        return
    try:
        engine_for(url)
    except SchemaBehind as exc:
        raise SystemExit(f"Error: {exc}") from None


class _SchemaCheck(dramatiq.Middleware):
    """Each `dramatiq workers` process checks the schema once it has booted."""

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        # A database unreachable at boot is suppressed: the first message meets it and is
        # retried, as before this check. SystemExit is no Exception: it stops the process.
        with contextlib.suppress(Exception):
            exit_unless_schema_at_head()


log_scrub.install()  # no token, email or phone number in any worker log line
_checked_settings()


def process_runtime() -> Runtime:
    """One Runtime per worker process, built on first use (after Dramatiq forks)."""
    global _runtime
    with _lock:
        if _runtime is None:
            settings = get_settings()
            engine = engine_for(settings.database_url)
            # Each job works as its own force (Runtime.for_force); the process starts as one.
            _runtime = Runtime(settings, engine=engine, force=platform_base(engine, settings))
            # Claims carry the id the worker registry beats under, so the sweep can tell
            # at once when the process holding them has stopped.
            _runtime.worker_id = worker_id_of(app.broker) or _runtime.worker_id
        return _runtime


app = WorkerApp(build_broker(get_settings().redis_url), process_runtime)
broker = app.broker
# Operators see every worker process (pid, host, threads, queues) and, when
# BROADCAST_WORKER_METRICS_PORT is set, Dramatiq's Prometheus metrics: both hook in as the
# package is imported, before the dramatiq CLI forks its worker processes.
add_worker_registry(broker, get_settings())
add_prometheus(broker, get_settings())
broker.add_middleware(_SchemaCheck())  # last added, so its after_process_boot runs first
dramatiq.set_broker(broker)

__all__ = ["app", "broker", "exit_unless_schema_at_head", "process_runtime"]
