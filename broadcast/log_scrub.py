"""Keep personal data and link tokens out of every log line.

`install()` puts a log-record factory in place that rewrites each record as it is made: in the
message, its arguments and any exception text, link tokens become `<token>`, emails `<email>` and
phone numbers `<phone>`. A factory, not a handler filter, so that it holds for every logger and
handler, including the ones uvicorn, Dramatiq and SQLAlchemy set up themselves. The web app, the
workers and the CLI each install it at start.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from numbers import Number
from typing import Any

# A capability link's path: /manage/<token>, /unsubscribe/<token>, /confirm/<token>, with any
# sub-path (/manage/<token>/data.json) kept, as it names the route.
_LINK = re.compile(r"(/(?:manage|unsubscribe|confirm)/)[^/\s?#\"']+")
# A token outside such a path (itsdangerous: payload.timestamp.signature) or in a query string.
_SIGNED = re.compile(r"\b[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}\b")
_QUERY_TOKEN = re.compile(r"((?:token|csrf[a-z_]*)=)[^&\s\"']+", re.IGNORECASE)
# A request line's query string can carry anything a client typed (names too): the access log
# keeps the path and drops the query.
_QUERY = re.compile(r"((?:^|[\s\"])/[^\s?\"]*)\?[^\s\"]+")
# Emails and numbers, also percent-encoded as a URL carries them (%40 for @, %2B for +).
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+=?^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+", re.IGNORECASE
)
# E.164 (+447700900123, +44 7700 900123) and UK national forms (07700 900123, 020 7946 1234).
_E164 = re.compile(r"(?<![\w+])(?:\+|%2B)\d[\d ()-]{6,17}\d(?!\w)", re.IGNORECASE)
_NATIONAL = re.compile(r"(?<![\w.:-])0\d{2,4}[ -]?\d{3,4}[ -]?\d{3,4}(?![\w.:])")
# PostgreSQL repeats the values of a failed row in its error detail (hide_parameters cannot
# reach these): "Key (name)=(Eve) already exists", "Failing row contains (1, Eve, ...)".
_PG_KEY = re.compile(r"(Key \([^)]*\)=\().*?(\) (?:already exists|is (?:not present|still)))")
_PG_ROW = re.compile(r"(Failing row contains \().*(\))")


def scrub(text: str) -> str:
    """`text` with link tokens, emails and phone numbers replaced by placeholders."""
    text = _PG_KEY.sub(r"\1<redacted>\2", text)
    text = _PG_ROW.sub(r"\1<redacted>\2", text)
    text = _LINK.sub(r"\1<token>", text)
    text = _SIGNED.sub("<token>", text)
    text = _QUERY_TOKEN.sub(r"\1<redacted>", text)
    text = _QUERY.sub(r"\1?<query>", text)
    text = _EMAIL.sub("<email>", text)
    text = _E164.sub("<phone>", text)
    return _NATIONAL.sub("<phone>", text)


def _scrubbed(value: Any) -> Any:
    if value is None or isinstance(value, Number):
        return value  # kept as it is, so that %d and %.1f still format it
    return scrub(value if isinstance(value, str) else str(value))


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub one record in place (message, arguments, exception and stack text)."""
    if isinstance(record.msg, str):
        record.msg = scrub(record.msg)
    else:
        record.msg = _scrubbed(record.msg)
    if isinstance(record.args, tuple):
        # Arguments stay a tuple: uvicorn's access formatter unpacks them.
        record.args = tuple(_scrubbed(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _scrubbed(v) for k, v in record.args.items()}
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)).rstrip())
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


class ScrubFilter(logging.Filter):
    """The same scrubbing as a filter, for a logging config that names filters."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


_installed: list[Callable[..., logging.LogRecord]] = []


def install() -> None:
    """Scrub every log record this process makes from now on (idempotent)."""
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return scrub_record(previous(*args, **kwargs))

    _installed.append(previous)
    logging.setLogRecordFactory(factory)
