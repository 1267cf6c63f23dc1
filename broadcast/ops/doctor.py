"""`broadcast doctor`: check every part the engine depends on and say how to fix what is wrong.

Nothing is sent: providers are probed with read-only calls (Twilio: list one message; SMTP:
connect, TLS, login, NOOP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from broadcast import keys
from broadcast.delivery.dispatch import QUEUES
from broadcast.errors import BroadcastError
from broadcast.ops.queues import WorkerSeen
from broadcast.settings import Settings
from broadcast.vocabulary import CHANNELS

# The workers registered in Redis (workers/monitor.py), handed in by the CLI: the core does not
# import Dramatiq.
LiveWorkers = Callable[[Settings], Sequence[WorkerSeen]]

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str | None = None


def run_checks(settings: Settings, live_workers: LiveWorkers | None = None) -> list[Check]:
    """Every check, in the order of docs/security.md's list of what to set before going live."""
    redis = _guard("redis", _redis, settings)
    checks = [
        _secret_key(settings),
        _suppression_key(settings),
        _public_url(settings),
        _ops_token(settings),
        _proxies(settings),
        _guard("database", _database, settings),
        redis,
    ]
    if settings.redis_url and live_workers is not None and redis.status == OK:
        checks.append(_guard("workers", lambda s: _workers(s, live_workers), settings))
    checks += [
        *_capacity(settings),
        _guard("sms", _sms, settings),
        _guard("voice", _voice, settings),
        _guard("email", _email, settings),
    ]
    return checks


def _guard(name: str, check: Callable[[Settings], Check], settings: Settings) -> Check:
    """A check that raises is a failed check, never a crashed doctor."""
    try:
        return check(settings)
    except BroadcastError as exc:
        return Check(name, FAIL, str(exc), _FIXES.get(name))
    except Exception as exc:  # noqa: BLE001 - every failure is a finding here
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(name, FAIL, f"{type(exc).__name__}: {first}", _FIXES.get(name))


_FIXES = {
    "database": "check BROADCAST_DATABASE_URL and that the server is running",
    "redis": "check BROADCAST_REDIS_URL and that redis-server is running",
    "sms": "check BROADCAST_TWILIO_ACCOUNT_SID, BROADCAST_TWILIO_AUTH_TOKEN, "
    "BROADCAST_TWILIO_API_URL",
    "voice": "check BROADCAST_TWILIO_ACCOUNT_SID, BROADCAST_TWILIO_AUTH_TOKEN, "
    "BROADCAST_TWILIO_API_URL",
    "email": "check BROADCAST_SMTP_HOST, _PORT, _TLS, _USERNAME and _PASSWORD",
}


def _secret_key(settings: Settings) -> Check:
    """A weak key never gets here: the settings refuse it (one line naming the setting)."""
    source = settings.key_source
    fix = f"set BROADCAST_SECRET_KEY to a generated key: {keys.HOW_TO_MAKE_ONE}"
    if source.kind == "missing":
        return Check("secret key", FAIL, source.describe(), fix)
    if source.kind == "file":
        # A key kept in a file on this machine suits a laptop, not several hosts.
        return Check("secret key", WARN, source.describe(), fix + " for a deployment")
    return Check("secret key", OK, source.describe())


def _suppression_key(settings: Settings) -> Check:
    if settings.suppression_key is not None:
        return Check("suppression key", OK, "set from the environment (BROADCAST_SUPPRESSION_KEY)")
    return Check(
        "suppression key",
        OK,
        "derived from the secret key; before rotating that, set BROADCAST_SUPPRESSION_KEY to "
        "the secret key's current value (docs/security.md)",
    )


def _ops_token(settings: Settings) -> Check:
    fix = f"set BROADCAST_OPS_TOKEN to a generated token: {keys.HOW_TO_MAKE_ONE}"
    if settings.ops_token is None:
        status = WARN if settings.env == "production" else OK
        return Check("ops token", status, "not set: /ops and /metrics are off (404)", fix)
    problem = keys.key_problem(settings.ops_token.get_secret_value().strip())
    if problem:
        status = FAIL if settings.env == "production" else WARN
        return Check("ops token", status, f"BROADCAST_OPS_TOKEN {problem}", fix)
    return Check("ops token", OK, "set: /ops and /metrics need it")


def _proxies(settings: Settings) -> Check:
    trusted = str(settings.forwarded_allow_ips or "").strip()
    fix = "set BROADCAST_FORWARDED_ALLOW_IPS to your reverse proxy's address only"
    if trusted == "*":
        status = FAIL if settings.env == "production" else WARN
        return Check(
            "trusted proxy",
            status,
            "X-Forwarded-For is trusted from any address: every client can choose its IP",
            fix,
        )
    if not trusted:
        return Check("trusted proxy", OK, "no proxy trusted: client addresses are the peers'")
    return Check("trusted proxy", OK, f"X-Forwarded-For trusted only from {trusted}")


def _workers(settings: Settings, live_workers: LiveWorkers) -> Check:
    seen = list(live_workers(settings))
    fix = "start the Procfile's worker processes (README: running the stack)"
    if not seen:
        return Check(
            "workers",
            FAIL,
            f"no live worker in Redis (none beat within {settings.ops_heartbeat_timeout:g} s): "
            "alerts would wait in the queues",
            fix,
        )
    served = {queue for worker in seen for queue in worker.queues}
    missing = [queue for queue in QUEUES if queue not in served]
    detail = f"{len(seen)} live worker(s), serving {', '.join(sorted(served)) or 'no queue'}"
    if missing:
        return Check("workers", WARN, f"{detail}; nobody takes {', '.join(missing)}", fix)
    return Check("workers", OK, detail)


def _public_url(settings: Settings) -> Check:
    parts = urlsplit(settings.public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return Check(
            "public url",
            FAIL,
            f"'{settings.public_url}' is not an absolute http(s) URL",
            "set BROADCAST_PUBLIC_URL to the address registrants and Twilio reach",
        )
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if settings.env == "production" and (parts.scheme != "https" or local):
        return Check(
            "public url",
            FAIL,
            f"{settings.public_url} cannot be reached from outside over https",
            "set BROADCAST_PUBLIC_URL to the service's public https address",
        )
    if local:
        return Check(
            "public url",
            WARN,
            f"{settings.public_url}: links and provider callbacks only work on this machine",
            "set BROADCAST_PUBLIC_URL for real use",
        )
    return Check("public url", OK, settings.public_url)


def _database(settings: Settings) -> Check:
    from sqlalchemy import text

    from broadcast.store.engine import create_db_engine, current_revision, head_revision

    engine = create_db_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current, head = current_revision(engine), head_revision()
    finally:
        engine.dispose()
    backend = engine.url.get_backend_name()
    if current != head:
        return Check(
            "database",
            WARN,
            f"{backend} reachable; schema at {current or 'empty'}, code expects {head}",
            "run `broadcast db upgrade`",
        )
    return Check("database", OK, f"{backend} reachable; schema at {current}")


def _redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return Check(
            "redis",
            WARN,
            "not configured: alerts are sent in-process (embedded mode)",
            "set BROADCAST_REDIS_URL to run a worker pool",
        )
    import redis

    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        info = client.info("server")
    finally:
        client.close()
    return Check("redis", OK, f"reachable (Redis {info.get('redis_version', '?')})")


def _capacity(settings: Settings) -> list[Check]:
    from broadcast.capacity import channel_rate

    checks = []
    for channel in CHANNELS:
        try:
            rate = channel_rate(settings, channel)
        except BroadcastError as exc:
            checks.append(
                Check(
                    f"{channel} capacity",
                    FAIL,
                    str(exc),
                    f"use COUNT/DURATION, e.g. BROADCAST_{channel.upper()}_RATE=500/1h",
                )
            )
            continue
        checks.append(Check(f"{channel} capacity", OK, str(rate) if rate else "unlimited"))
    return checks


def _twilio(settings: Settings, channel: str, sender: str | None, configured: bool) -> Check:
    if not settings.twilio_configured:
        return Check(
            channel,
            WARN,
            f"no provider: {channel} goes to the outbox folder {settings.outbox_dir}",
            _FIXES[channel],
        )
    if not configured:
        setting = "BROADCAST_SMS_FROM" if channel == "sms" else "BROADCAST_VOICE_FROM"
        return Check(channel, FAIL, f"Twilio is configured but {setting} is not", f"set {setting}")
    from broadcast.channels.probes import probe_twilio

    return Check(channel, OK, f"{probe_twilio(settings)}; sender {sender}")


def _sms(settings: Settings) -> Check:
    return _twilio(settings, "sms", settings.sms_from, settings.sms_configured)


def _voice(settings: Settings) -> Check:
    return _twilio(settings, "voice", settings.voice_from, settings.voice_configured)


def _email(settings: Settings) -> Check:
    if not settings.smtp_host:
        return Check(
            "email",
            WARN,
            f"no provider: email goes to the outbox folder {settings.outbox_dir}",
            _FIXES["email"],
        )
    if not settings.email_from:
        return Check(
            "email",
            FAIL,
            "BROADCAST_SMTP_HOST is set but BROADCAST_EMAIL_FROM is not",
            "set BROADCAST_EMAIL_FROM",
        )
    from broadcast.channels.probes import probe_smtp

    return Check("email", OK, probe_smtp(settings))
