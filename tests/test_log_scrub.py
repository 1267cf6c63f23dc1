"""Tokens, emails and phone numbers never reach a log line; failed SQL never logs its values."""

from __future__ import annotations

import io
import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from broadcast import log_scrub
from broadcast.registrants.links import LinkSigner
from broadcast.store.engine import create_db_engine
from tests.support.keys import TEST_SECRET_KEY

TOKEN = LinkSigner(TEST_SECRET_KEY, "https://a.example").token("ab" * 16, "manage")


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        (
            f'127.0.0.1:5 - "GET /manage/{TOKEN}/data.json HTTP/1.1" 200',
            "/manage/<token>/data.json",
        ),
        (f'"POST /unsubscribe/{TOKEN} HTTP/1.1" 303', "/unsubscribe/<token>"),
        (f"/confirm/{TOKEN}?x=1", "/confirm/<token>?<query>"),
        (f"verifying {TOKEN} failed", "verifying <token> failed"),
        ("token=abc&x=1", "token=<redacted>&x=1"),
        ('"GET /subscribe?name=Wendy+Weblog&x=1 HTTP/1.1" 200', '"GET /subscribe?<query> HTTP'),
        ("GET /x/wendy.weblog%40example.org/07911123111", "GET /x/<email>/<phone>"),
        ("mobile=%2B447911123111", "mobile=<phone>"),
        ("to alice.o'neil+alerts@example.co.uk now", "to <email> now"),
        ("sms to +447700900123 failed", "sms to <phone> failed"),
        ("call +44 20 7946 0123 busy", "call <phone> busy"),
        ("mobile 07700 900123 / 07700900123", "mobile <phone> / <phone>"),
        ("landline 020 7946 0123", "landline <phone>"),
    ],
)
def test_scrub_replaces_what_identifies_a_person(line: str, kept: str) -> None:
    assert kept in log_scrub.scrub(line)


@pytest.mark.parametrize(
    "line",
    [
        "2026-12-01 22:01:04,123 INFO dramatiq.worker.WorkerThread: started",
        "alert 12 sent 500 of 1000 in 0.0123 s (code 21610)",
        "GET /healthz HTTP/1.1 200; Twilio answered HTTP 401, error 20003",
        "sqlalchemy.engine.base.Engine connect",
    ],
)
def test_scrub_leaves_ordinary_log_lines_alone(line: str) -> None:
    assert log_scrub.scrub(line) == line


def test_installed_scrubbing_covers_arguments_and_exceptions_on_any_logger() -> None:
    # Given a handler as uvicorn or Dramatiq would set up, on a logger of its own
    log_scrub.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("tests.scrub.any")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        # When a message, its arguments and an exception carry personal data
        logger.info('%s - "%s %s"', "127.0.0.1", "GET", f"/manage/{TOKEN}")
        try:
            raise ValueError("bad row for bob@example.org, +447700900123")
        except ValueError:
            logger.exception("import failed for %s", {"email": "bob@example.org"})
    finally:
        logger.removeHandler(handler)
    written = out.getvalue()
    # Then none of it is written, and the rest is
    assert TOKEN not in written and "bob@example.org" not in written
    assert "+447700900123" not in written
    assert "/manage/<token>" in written and "ValueError: bad row for <email>, <phone>" in written


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_failed_statement_never_shows_its_parameters(
    backend: str, tmp_path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path}/p.db"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_db_engine(url)
    row = {"name": "Eve Nullbyte", "email": "eve@example.org", "postcode": "SW1A 1AA"}
    try:
        with engine.begin() as connection:
            connection.execute(
                text("CREATE TEMPORARY TABLE people (name TEXT UNIQUE, email TEXT, postcode TEXT)")
            )
            insert = text("INSERT INTO people VALUES (:name, :email, :postcode)")
            connection.execute(insert, row)
            with pytest.raises(SQLAlchemyError) as caught:
                connection.execute(insert, row)
    finally:
        engine.dispose()
    # The engine leaves the bound values out of the error text
    assert "hidden due to hide_parameters" in str(caught.value)
    assert "SW1A 1AA" not in str(caught.value)
    # And what the database itself repeats of the row (PostgreSQL's detail) is scrubbed in logs
    log_scrub.install()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("tests.scrub.sql")
    logger.addHandler(handler)
    try:
        logger.error("request failed", exc_info=caught.value)
    finally:
        logger.removeHandler(handler)
    assert "IntegrityError" in out.getvalue()
    assert all(value not in out.getvalue() for value in row.values()), out.getvalue()
