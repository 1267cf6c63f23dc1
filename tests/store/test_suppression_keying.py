"""The suppression list's own key: derived from the link key in a new database, unchanged where
hashes were made before migration 0010, and kept across a rotation of the link key."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session

from broadcast.registrants import suppression
from broadcast.settings import Settings
from broadcast.store.engine import alembic_config, create_db_engine, upgrade
from broadcast.store.tables import utcnow
from tests.support.forces import default_force
from tests.support.servers import throwaway_postgres_database

NUMBER = "+447700900123"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database of its own (migrations are run by the test)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/keying.db"
        return
    with throwaway_postgres_database() as url:
        yield url


def settings_with(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def suppressed(engine: Engine, settings: Settings) -> str | None:
    key = suppression.bind_keying(settings, engine)
    with Session(engine) as session:
        return suppression.suppression_reason(
            session=session, channel="sms", address=NUMBER, key=key
        )


def test_a_new_database_keys_hashes_apart_from_links_and_survives_rotation(
    fresh_url: str,
) -> None:
    engine = create_db_engine(fresh_url)
    upgrade(engine)
    engine = default_force(engine)
    old = settings_with(secret_key=secrets.token_urlsafe(32))
    key = suppression.bind_keying(old, engine)
    # The suppression key is not the link key (a derived key of its own)
    assert key != old.link_key().encode()
    with Session(engine) as session:
        suppression.suppress(
            session=session, channel="sms", address=NUMBER, reason="unsubscribed", key=key
        )
        session.commit()
    assert suppressed(engine, old) == "unsubscribed"
    # When the link key is rotated as docs/security.md says (the old value kept as the
    # suppression key), Then the list still matches
    rotated = settings_with(secret_key=secrets.token_urlsafe(32), suppression_key=old.link_key())
    assert suppressed(engine, rotated) == "unsubscribed"
    # And rotating without that step is what loses it (the test can tell the difference)
    assert suppressed(engine, settings_with(secret_key=secrets.token_urlsafe(32))) is None
    engine.dispose()


@pytest.mark.parametrize("explicit", [False, True])
def test_hashes_made_before_0010_keep_matching(fresh_url: str, explicit: bool) -> None:
    # Given an installation at 0004 whose suppression list was keyed the old way: with
    # BROADCAST_SUPPRESSION_KEY when set, else with the secret key itself
    engine = create_db_engine(fresh_url)
    command.upgrade(alembic_config(engine), "0004")
    secret, own = secrets.token_urlsafe(32), "an-old-suppression-key"
    old_key = (own if explicit else secret).encode()
    with engine.begin() as conn:  # as the 0004 schema had the table (no force yet)
        conn.execute(
            text(
                "INSERT INTO suppression (address_hash, channel, reason, created_at) "
                "VALUES (:hash, 'sms', 'unsubscribed', :now)"
            ),
            {"hash": suppression.address_hash(NUMBER, old_key), "now": utcnow()},
        )
    # When it is upgraded, Then the same settings still find the suppressed number (in the
    # default force's list, which the upgrade gave every row to)
    upgrade(engine)
    engine = default_force(engine)
    values = {"secret_key": secret} | ({"suppression_key": own} if explicit else {})
    assert suppressed(engine, settings_with(**values)) == "unsubscribed"
    # And the documented rotation keeps it too
    if not explicit:
        rotated = settings_with(secret_key=secrets.token_urlsafe(32), suppression_key=secret)
        assert suppressed(engine, rotated) == "unsubscribed"
    engine.dispose()
