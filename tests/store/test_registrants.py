from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from broadcast.errors import Conflict, InvalidInput, NotFound, Suppressed
from broadcast.registrants import people as store
from broadcast.registrants.consent import ConsentSource
from broadcast.store.tables import (
    ConsentLedgerEntry,
    Registrant,
    SubscriptionStatus,
    SuppressedAddress,
)
from tests.store.conftest import KEY
from tests.store.factories import draft

CLI = ConsentSource(source="cli", operator="pc-test", wording_version="2026-11")


def add(session: Session, **overrides: str) -> Registrant:
    return store.add_registrant(session=session, draft=draft(**overrides), source=CLI, key=KEY)


def test_add_and_find_by_id_email_or_phone(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        session.commit()
        # When the registrant is looked up each way, Then it is the same person
        for ref in (str(jo.id), "JO@example.com", "+447911123456", "07911 123456"):
            assert store.find_registrant(session=session, ref=ref).id == jo.id
        with pytest.raises(NotFound):
            store.find_registrant(session=session, ref="nobody@example.com")
        view = store.views(session=session, registrants=[jo])[0]
        assert view["channels"] == {"email": "active", "sms": "active"}
        assert view["areas"] == ["SW1A"] and view["topics"] == ["burglary"]


def test_an_email_or_mobile_is_one_persons_and_a_landline_a_households(engine: Engine) -> None:
    with Session(engine) as session:
        jo = add(session, landline="020 7946 1234", channels="sms;email;voice")
        # An email or a mobile someone else holds is refused, naming which it was
        with pytest.raises(
            Conflict, match=f"that email address already belongs to registrant {jo.id}"
        ):
            add(session, mobile="07920 654321")
        with pytest.raises(
            Conflict, match=f"that mobile number already belongs to registrant {jo.id}"
        ):
            add(session, email="other@example.com")
        # But a landline is a household's: another person on it is a registrant of their own
        sam = add(
            session,
            name="Sam Bloggs",
            email="sam@example.com",
            mobile="",
            landline="020 7946 1234",
            channels="email;voice",
        )
        assert sam.id != jo.id and sam.landline == jo.landline == "+442079461234"
        # And amending someone onto another's mobile is refused, onto a shared landline is not
        with pytest.raises(Conflict, match="mobile number"):
            store.amend(
                session=session,
                registrant=sam,
                draft=draft(mobile="07911 123456", channels="sms"),
                changed={"mobile"},
                source=CLI,
                key=KEY,
                new_channel_status=SubscriptionStatus.ACTIVE,
            )
        # And looking the landline up names both, since it cannot say which is meant
        with pytest.raises(InvalidInput, match=f"shared by registrants {jo.id}, {sam.id}"):
            store.find_registrant(session=session, ref="020 7946 1234")
        assert store.find_registrant(session=session, ref="07911 123456").id == jo.id


def test_unsubscribe_suppresses_the_address_even_after_erasure(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        # When Jo unsubscribes from SMS
        assert store.unsubscribe(
            session=session, registrant=jo, channels=["sms"], source=CLI, key=KEY
        ) == ["sms"]
        session.commit()
        subs = store.subscriptions(session=session, registrant_id=jo.id)
        assert subs["sms"].status == SubscriptionStatus.UNSUBSCRIBED
        assert subs["email"].status == SubscriptionStatus.ACTIVE
        # And is then erased
        store.erase(session=session, registrant=jo, source=CLI, key=KEY)
        session.commit()
        # Then nothing personal is left, and the ledger and suppression list still hold the facts
        row = session.get(Registrant, jo.id)
        assert (row.name, row.email, row.mobile, row.postcode) == (None, None, None, None)
        assert row.erased_at is not None
        events = [e.event for e in session.scalars(select(ConsentLedgerEntry))]
        assert events == ["subscribed", "subscribed", "unsubscribed", "erased"]
        reasons = {s.channel: s.reason for s in session.scalars(select(SuppressedAddress))}
        assert reasons == {"sms": "unsubscribed", "email": "erased", "voice": "erased"}
        stored = " ".join(
            str(v) for s in session.scalars(select(SuppressedAddress)) for v in (s.address_hash,)
        )
        assert "7911123456" not in stored and "jo@example.com" not in stored
        with pytest.raises(NotFound):
            store.find_registrant(session=session, ref="jo@example.com")


def test_a_suppressed_address_cannot_be_added_again(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        store.unsubscribe(session=session, registrant=jo, channels=None, source=CLI, key=KEY)
        store.erase(session=session, registrant=jo, source=CLI, key=KEY)
        session.commit()
        with pytest.raises(Suppressed, match="suppression list"):
            add(session, name="Jo Again")


def test_ledger_is_append_only_in_the_database(engine: Engine) -> None:
    with Session(engine) as session:
        add(session)
        session.commit()
    for statement in ("UPDATE consent_ledger SET event = 'x'", "DELETE FROM consent_ledger"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM consent_ledger")).scalar_one() == 2


def test_amend_changes_details_and_adds_a_channel(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        new = draft(
            landline="020 7946 0123", channels="voice", areas="SE1;SW1A 1", name="Joanna Bloggs"
        )
        done = store.amend(
            session=session,
            registrant=jo,
            draft=new,
            changed={"landline", "areas", "name"},
            source=CLI,
            key=KEY,
            new_channel_status=SubscriptionStatus.PENDING,
        )
        session.commit()
        assert done == ["name", "landline", "areas", "+voice"]
        view = store.views(session=session, registrants=[jo])[0]
        assert view["name"] == "Joanna Bloggs" and view["landline"] == "+442079460123"
        assert view["areas"] == ["SE1", "SW1A 1"]
        assert view["channels"]["voice"] == "pending"


def test_export_holds_everything_about_one_person(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        session.commit()
        data = store.export(session=session, registrant=jo)
    assert data["email"] == "jo@example.com"
    assert set(data["subscriptions"]) == {"sms", "email"}
    assert [e["event"] for e in data["consent_history"]] == ["subscribed", "subscribed"]
    assert data["consent_history"][0]["operator"] == "pc-test"


def test_listing_filters_by_area_topic_channel_and_status(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        add(session)
        add(
            session,
            email="b@example.com",
            mobile="07911 000002",
            areas="SE1",
            topics="fraud",
            channels="email",
        )
        session.commit()
        ids = lambda **f: [v["email"] for v in store.iter_views(session=session, **f)]  # noqa: E731
        assert ids(area="SE1") == ["b@example.com"]
        assert ids(topic="burglary") == ["jo@example.com"]
        assert ids(channel="sms") == ["jo@example.com"]
        assert ids(channel="email", status="active") == ["jo@example.com", "b@example.com"]
        assert ids(page_size=1) == ["jo@example.com", "b@example.com"]


def test_a_provider_reported_opt_out_suppresses_the_channel(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        jo = add(session)
        store.suppress_channel(
            session=session,
            registrant=jo,
            channel="sms",
            key=KEY,
            reason="opted out at provider (21610)",
            source=ConsentSource("delivery"),
        )
        session.commit()
        subs = store.subscriptions(session=session, registrant_id=jo.id)
        assert subs["sms"].status == SubscriptionStatus.SUPPRESSED
        assert subs["email"].status == SubscriptionStatus.ACTIVE
        with pytest.raises(Suppressed):
            store.amend(
                session=session,
                registrant=jo,
                draft=draft(channels="sms"),
                changed=set(),
                source=CLI,
                key=KEY,
                new_channel_status=SubscriptionStatus.ACTIVE,
            )
