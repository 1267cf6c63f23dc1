"""Which server a command could not reach, as one line an operator can act on.

`common.one_line_errors` asks `unreachable` about every error it does not otherwise know, so a
database, Redis, SMTP or Twilio outage reads the same in every command. Lines name the server by
its URL or host with any password masked, never a credential.
"""

from __future__ import annotations

import smtplib

import redis
from sqlalchemy.exc import DBAPIError, OperationalError

from broadcast.settings import Settings

# SQLSTATE classes that mean "could not get a working connection", as opposed to a failing
# statement: 08 connection exception, 28 bad credentials, 3D no such database, 57P shutdown.
CONNECTION_STATES = ("08", "28", "3D", "57P")


def broker_down(exc: BaseException) -> bool:
    """The broker (Redis) did not take the command: it cannot be reached (refused, timed out,
    dropped, still loading) or it refused (out of memory, read-only replica)."""
    return isinstance(exc, redis.RedisError)


def unreachable(exc: BaseException, settings: Settings | None) -> str | None:
    """One line naming what could not be reached (no full stop at the end), or None if `exc`
    is not a connection error. Any other Redis error is named too: to the operator it is the
    same outage of the queue."""
    shown = settings.masked() if settings is not None else {}
    redis_at = f" at {shown['redis_url']}" if shown.get("redis_url") else ""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return f"could not reach the queue (Redis{redis_at}): {_first_line(exc, settings)}"
    if isinstance(exc, redis.RedisError):  # reached, but refused the command (full, read-only)
        return f"the queue (Redis{redis_at}) refused: {_first_line(exc, settings)}"
    if isinstance(exc, DBAPIError) and _connection_failure(exc):
        where = f" at {shown['database_url']}" if shown.get("database_url") else ""
        return f"could not reach the database{where}: {_first_line(exc.orig or exc, settings)}"
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        host = f" {settings.smtp_host}:{settings.smtp_port}" if settings else ""
        return f"could not reach the mail server{host}: {_first_line(exc, settings)}"
    import requests  # on use: the Twilio transport's errors; most commands never load it

    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        where = f" at {shown['twilio_api_url']}" if shown.get("twilio_api_url") else ""
        return f"could not reach Twilio{where}: {exc.__class__.__name__}"
    return None


def _connection_failure(exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if state is not None:
        return str(state).startswith(CONNECTION_STATES)
    # psycopg gives no SQLSTATE when no server answered; SQLite says it cannot open the file.
    text = str(exc.orig)
    return exc.orig.__class__.__module__.startswith("psycopg") or "unable to open" in text


def _first_line(exc: BaseException, settings: Settings | None) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0].rstrip(".") if lines else exc.__class__.__name__
    for secret in _secrets(settings):
        text = text.replace(secret, "***")
    return text


def _secrets(settings: Settings | None) -> list[str]:
    """Passwords that must never be printed, even if a driver echoes one in its message."""
    if settings is None:
        return []
    from sqlalchemy.engine import make_url

    found = []
    for url in (settings.database_url, settings.redis_url):
        try:
            password = make_url(url).password if url else None
        except Exception:
            continue
        if password:
            found.append(str(password))
    for secret in (settings.smtp_password, settings.twilio_auth_token):
        value = secret.get_secret_value() if secret is not None else ""
        if value:
            found.append(value)
    return found
