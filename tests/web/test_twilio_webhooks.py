"""Twilio webhooks signed with the official RequestValidator, behind a proxy: the app is reached
on 127.0.0.1 but signatures are computed for BROADCAST_PUBLIC_URL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlmodel import select
from twilio.request_validator import RequestValidator

from broadcast.delivery import callbacks
from broadcast.registrants import keywords, suppression
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.people import add_registrant
from broadcast.registrants.suppression import address_hash
from broadcast.registrants.validation import parse_registrant
from broadcast.store.tables import SubscriptionStatus, SuppressedAddress
from tests.delivery.conftest import clean_postgres
from tests.support.twilio_server import AUTH_TOKEN
from tests.web.conftest import Web

PUBLIC_URL = "https://alerts.example.police.uk"
MOBILE, LANDLINE = "+447911123456", "+442079460123"


@pytest.fixture
def hook(make_web: Callable[..., Web]) -> Web:
    return make_web(public_url=PUBLIC_URL)


def post(web: Web, path: str, params: dict[str, str], signature: str | None = "sign"):  # type: ignore[no-untyped-def]
    headers = {}
    if signature == "sign":
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, params)
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return web.client().post(path, data=params, headers=headers)


def make_registrant(web: Web, status: SubscriptionStatus, channels: str = "sms,voice") -> int:
    draft = parse_registrant(
        {"mobile": MOBILE, "landline": LANDLINE, "channels": channels, "postcode": "SW1A 2AA"},
        topics=web.settings.topic_set,
    )
    with web.session() as session:
        registrant = add_registrant(
            session=session,
            draft=draft,
            source=ConsentSource("test"),
            key=web.settings.suppression_secret,
            status=status,
        )
        session.commit()
        assert registrant.id is not None
        return registrant.id


def sms(body: str, sid: str = "SM" + "1" * 32) -> dict[str, str]:
    return {
        "From": MOBILE,
        "To": "+441632960001",
        "Body": body,
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
    }


def suppressed(web: Web, channel: str, address: str) -> bool:
    with web.session() as session:
        key = address_hash(address, web.settings.suppression_secret)
        return suppression.entry(session=session, channel=channel, hashed=key) is not None


def test_stop_unsubscribes_suppresses_and_records(hook: Web) -> None:
    rid = make_registrant(hook, SubscriptionStatus.ACTIVE)
    response = post(hook, "/twilio/sms/inbound", sms(" stop "))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text.startswith("<?xml") and "<Response><Message>" in response.text
    assert "no longer get" in response.text
    assert hook.statuses(rid) == {"sms": "unsubscribed", "voice": "active"}
    assert suppressed(hook, "sms", MOBILE)
    assert ("unsubscribed", "sms", "sms-keyword") in hook.ledger(rid)


@pytest.mark.parametrize("word", ["STOPALL", "unsubscribe", "Cancel", "END", "quit."])
def test_every_stop_word(hook: Web, word: str) -> None:
    rid = make_registrant(hook, SubscriptionStatus.ACTIVE)
    post(hook, "/twilio/sms/inbound", sms(word, sid="SM" + word.strip(".").upper().ljust(32, "0")))
    assert hook.statuses(rid)["sms"] == "unsubscribed"


def test_start_resubscribes_and_yes_confirms_pending(hook: Web) -> None:
    rid = make_registrant(hook, SubscriptionStatus.ACTIVE)
    post(hook, "/twilio/sms/inbound", sms("STOP", sid="SM" + "a" * 32))
    again = post(hook, "/twilio/sms/inbound", sms("Start", sid="SM" + "b" * 32))
    assert "again" in again.text and hook.statuses(rid)["sms"] == "active"
    assert not suppressed(hook, "sms", MOBILE)
    assert ("re-subscribed", "sms", "sms-keyword") in hook.ledger(rid)


def test_yes_confirms_a_pending_number(hook: Web) -> None:
    rid = make_registrant(hook, SubscriptionStatus.PENDING, channels="sms")
    reply = post(hook, "/twilio/sms/inbound", sms("yes"))
    assert "now gets" in reply.text
    assert hook.statuses(rid) == {"sms": "active"}
    assert ("confirmed", "sms", "sms-keyword") in hook.ledger(rid)


def test_help_and_anything_else(hook: Web) -> None:
    make_registrant(hook, SubscriptionStatus.ACTIVE)
    help_reply = post(hook, "/twilio/sms/inbound", sms("INFO", sid="SM" + "c" * 32))
    assert "Test Metropolitan Police community alerts" in help_reply.text
    other = post(hook, "/twilio/sms/inbound", sms("there is a burglary now", sid="SM" + "d" * 32))
    assert "not monitored" in other.text and "101" in other.text and "999" in other.text


def test_missing_forged_replayed_and_misdirected_signatures_are_refused(hook: Web) -> None:
    rid = make_registrant(hook, SubscriptionStatus.ACTIVE)
    params = sms("STOP")
    good = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + "/twilio/sms/inbound", params
    )
    forged = RequestValidator("not-the-token").compute_signature(
        PUBLIC_URL + "/twilio/sms/inbound", params
    )
    other_path = RequestValidator(AUTH_TOKEN).compute_signature(
        PUBLIC_URL + "/twilio/sms/status", params
    )
    local_url = RequestValidator(AUTH_TOKEN).compute_signature(
        hook.url + "/twilio/sms/inbound", params
    )
    for signature in (None, "", forged, other_path, local_url):
        assert post(hook, "/twilio/sms/inbound", params, signature).status_code == 403
    # A signed request whose body was altered
    tampered = {**params, "From": "+447911000002"}
    assert post(hook, "/twilio/sms/inbound", tampered, good).status_code == 403
    assert hook.statuses(rid)["sms"] == "active"
    # The genuine request works once; the same request again is a replay
    assert post(hook, "/twilio/sms/inbound", params, good).status_code == 200
    assert post(hook, "/twilio/sms/inbound", params, good).status_code == 403


def test_voice_gather_nine_unsubscribes_and_one_confirms(hook: Web) -> None:
    rid = make_registrant(hook, SubscriptionStatus.PENDING, channels="voice")
    call = {"CallSid": "CA" + "1" * 32, "To": LANDLINE, "From": "+441632960000", "Digits": "1"}
    confirmed = post(hook, "/twilio/voice/gather", call)
    assert "<Say" in confirmed.text and "confirmed" in confirmed.text
    assert hook.statuses(rid) == {"voice": "active"}
    stop = post(hook, "/twilio/voice/gather", {**call, "Digits": "9", "CallSid": "CA" + "2" * 32})
    assert stop.status_code == 200 and "<Hangup" in stop.text
    assert hook.statuses(rid) == {"voice": "unsubscribed"}
    assert suppressed(hook, "voice", LANDLINE)
    assert ("unsubscribed", "voice", "voice-keypress") in hook.ledger(rid)
    # Unsigned keypresses change nothing
    assert post(hook, "/twilio/voice/gather", {**call, "Digits": "9"}, None).status_code == 403


def test_status_callbacks_are_accepted_and_checked(hook: Web) -> None:
    params = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "delivered", "ErrorCode": ""}
    assert post(hook, "/twilio/sms/status", params).status_code == 204
    call = {"CallSid": "CA" + "e" * 32, "CallStatus": "completed"}
    assert post(hook, "/twilio/voice/status", call).status_code == 204
    assert post(hook, "/twilio/voice/status", call, None).status_code == 403
    # An unknown provider id is a harmless no-op
    with hook.session() as session:
        assert callbacks.apply_status_callback(session, "SM" + "e" * 32, "delivered", None) is False


def test_keyword_parsing() -> None:
    assert keywords.keyword(" stop! ") == "STOP"
    assert keywords.keyword("please stop") == ""
    assert callbacks.delivery_state("undelivered") == "undeliverable"
    assert callbacks.delivery_state("sent") is None


def test_status_callbacks_move_a_delivery_once(hook: Web) -> None:
    from datetime import timedelta

    from broadcast.store.tables import Alert, Delivery, utcnow

    sid = "SM" + "f" * 32
    with hook.session() as session:
        alert = Alert(
            template="community-alert",
            channels="sms",
            operator="test",
            expires_at=utcnow() + timedelta(hours=1),
        )
        session.add(alert)
        session.flush()
        session.add(
            Delivery(
                alert_id=alert.id, registrant_id=1, channel="sms", state="sent", provider_id=sid
            )
        )
        session.commit()

    def state() -> tuple[str, str | None]:
        with hook.session() as session:
            row = session.exec(select(Delivery).where(Delivery.provider_id == sid)).one()
            return row.state, row.error_code

    # An in-progress status changes nothing; "undelivered" with a code is final
    post(hook, "/twilio/sms/status", {"MessageSid": sid, "MessageStatus": "sent"})
    assert state() == ("sent", None)
    post(
        hook,
        "/twilio/sms/status",
        {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "30003"},
    )
    assert state() == ("undeliverable", "30003")
    # A late or repeated "delivered" never moves a final state back
    post(hook, "/twilio/sms/status", {"MessageSid": sid, "MessageStatus": "delivered"})
    assert state() == ("undeliverable", "30003")


def test_an_opt_out_reported_by_status_callback_suppresses_the_number(hook: Web) -> None:
    from datetime import timedelta

    from broadcast.registrants import people as registrants
    from broadcast.registrants.consent import ConsentSource
    from broadcast.registrants.validation import parse_registrant
    from broadcast.store.tables import Alert, Delivery, utcnow

    sid = "SM" + "a" * 32
    with hook.session() as session:
        jo = registrants.add_registrant(
            session=session,
            draft=parse_registrant(
                {"name": "Jo", "mobile": "07911 123456", "channels": "sms"}, topics=frozenset()
            ),
            source=ConsentSource("cli"),
            key=hook.settings.suppression_secret,
        )
        alert = Alert(
            template="community-alert",
            channels="sms",
            operator="test",
            expires_at=utcnow() + timedelta(hours=1),
        )
        session.add(alert)
        session.flush()
        session.add(
            Delivery(
                alert_id=alert.id, registrant_id=jo.id, channel="sms", state="sent", provider_id=sid
            )
        )
        session.commit()
    # When Twilio reports the message undelivered because the recipient had sent STOP
    params = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610"}
    assert post(hook, "/twilio/sms/status", params).status_code == 204
    # Then the number is suppressed and the registrant's SMS channel with it
    with hook.session() as session:
        subs = registrants.subscriptions(session=session, registrant_id=jo.id)
        assert subs["sms"].status == "suppressed"
        assert session.exec(select(SuppressedAddress)).one().reason == "opted-out"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_pressing_nine_stops_calls_to_the_number_for_the_whole_household(
    make_web: Callable[..., Web], request: pytest.FixtureRequest, database: str
) -> None:
    extra = {}
    if database == "postgresql":
        extra["database_url"] = clean_postgres(request.getfixturevalue("postgres_url"))
    hook = make_web(public_url=PUBLIC_URL, **extra)
    # Given two people sharing the landline for voice, and a third with a landline of their own
    ids = []
    for name, email, landline in (
        ("Alice", "alice@example.com", LANDLINE),
        ("Bob", "bob@example.com", LANDLINE),
        ("Dev", "dev@example.com", "+442079460999"),
    ):
        draft = parse_registrant(
            {"name": name, "email": email, "landline": landline, "channels": "email,voice"},
            topics=hook.settings.topic_set,
        )
        with hook.session() as session:
            registrant = add_registrant(
                session=session,
                draft=draft,
                source=ConsentSource("test"),
                key=hook.settings.suppression_secret,
            )
            session.commit()
            ids.append(registrant.id)
    # When 9 is pressed on a call to the shared landline
    call = {"CallSid": "CA" + "3" * 32, "To": LANDLINE, "From": "+441632960000", "Digits": "9"}
    reply = post(hook, "/twilio/voice/gather", call)
    # Then the reply says the number gets no more calls, for anyone on it
    assert reply.status_code == 200 and "<Say" in reply.text
    assert "This number will get no more calls" in reply.text
    assert "for anyone registered on it" in reply.text
    # And voice stops for both on it (email stays), and the number is suppressed for voice
    assert (
        hook.statuses(ids[0])
        == hook.statuses(ids[1])
        == {"email": "active", "voice": "unsubscribed"}
    )
    assert ("unsubscribed", "voice", "voice-keypress") in hook.ledger(ids[1])
    assert suppressed(hook, "voice", LANDLINE)
    # But not for someone on another number
    assert hook.statuses(ids[2]) == {"email": "active", "voice": "active"}
