"""What every CLI command shares: settings, the database, the operator, errors as one line."""

from __future__ import annotations

import functools
import getpass
from collections.abc import Callable
from typing import Any, TypeVar, cast

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlmodel import Session

from broadcast.cli.dev_database import open_announced
from broadcast.errors import BroadcastError, NotFound
from broadcast.forces.choose import chosen
from broadcast.settings import Settings, get_settings
from broadcast.store.engine import engine_for
from broadcast.store.tenancy import national, scoped

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2
# The alert is saved with its deliveries but the queue (Redis) is down: the sweeper hands it over.
EXIT_SAVED_NOT_QUEUED = 3

console = Console(stderr=False)
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Settings:
    return get_settings()


# The root `--force CODE` option (cli.py), when given: the force every command works as.
chosen_force_code: str | None = None


def engine() -> Engine:
    """The configured database (migrated to the latest schema on first use), working as the
    chosen force: --force, else BROADCAST_FORCE, else the only force (forces.choose)."""
    database = open_announced(settings(), engine_for)
    return scoped(database, chosen(database, settings(), chosen_force_code).id)


def platform_engine() -> Engine:
    """The configured database seeing every force (`forces` commands)."""
    return national(open_announced(settings(), engine_for))


def suppression_key() -> bytes:
    """The suppression list's key for the configured database (its keying, migration 0010)."""
    from broadcast.registrants.suppression import bind_keying

    return bind_keying(settings(), engine())


def default_operator() -> str:
    """Who is running the command: BROADCAST_OPERATOR (environment or .env), else the OS user."""
    explicit = settings().operator
    if explicit:
        return explicit
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line_errors(function: F) -> F:
    """Turn the library's errors, a server that cannot be reached (database, Redis, SMTP,
    Twilio) and other database trouble into one clear line and exit code 2."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except NotFound as exc:
            raise fail(str(exc)) from None
        except BroadcastError as exc:
            raise fail(str(exc)) from None
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError

            from broadcast.cli.outages import unreachable

            down = unreachable(exc, _settings_or_none())
            if down is not None:
                raise fail(down) from None
            if isinstance(exc, OSError):
                raise fail(f"{exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}") from None
            if isinstance(exc, SQLAlchemyError):
                first = str(exc.__cause__ or exc).splitlines()[0]
                raise fail(f"database error: {first}") from None
            raise

    return cast(F, wrapper)


def _settings_or_none() -> Settings | None:
    try:
        return settings()
    except Exception:  # a bad setting is its own error; the line then names no server
        return None


def session() -> Session:
    """A session whose objects stay readable after commit (commands print them afterwards)."""
    return Session(engine(), expire_on_commit=False)
