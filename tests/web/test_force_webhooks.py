"""Twilio webhooks on a platform of three forces (one Twilio account, so one signing token):
each is handled as the force whose number it is about (the number texted, the number a message
or call came from), or as the URL's force when forces share a number; a number no force has is
refused and changes nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlmodel import Session, select
from twilio.request_validator import RequestValidator

from broadcast.forces import registry
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.people import add_registrant
from broadcast.registrants.validation import parse_registrant
from broadcast.store.engine import engine_for
from broadcast.store.tables import Subscription
from broadcast.store.tenancy import scoped
from tests.support.smtp_server import SmtpTestServer
from tests.support.twilio_server import AUTH_TOKEN, TwilioTestServer
from tests.web.conftest import SMS_FROM, Web, web_settings

SUFFOLK_NUMBER = "+441632960222"
MOBILE = "+447911123456"


@pytest.fixture
def platform(
    make_web: Callable[..., Web],
    database_url: str,
    tmp_path: Path,
    smtp: SmtpTestServer,
    twilio: TwilioTestServer,
) -> tuple[Web, dict[str, int]]:
    """The Met and Dyfed-Powys send on the platform's numbers, Suffolk on its own; the same
    person (one mobile) is registered with all three."""
    base = web_settings(tmp_path, 0, smtp, twilio, database_url=database_url)
    engine = engine_for(database_url)
    registry.amend(engine, base, "default", new_code="met", name="Metropolitan Police")
    registry.add(
        engine,
        base,
        "suffolk",
        "Suffolk Constabulary",
        profile={"sms_from": SUFFOLK_NUMBER, "voice_from": SUFFOLK_NUMBER},
    )
    registry.add(engine, base, "dyfed-powys", "Heddlu Dyfed-Powys Police")
    people = {}
    for force in registry.all_forces(engine):
        draft = parse_registrant(
            {"mobile": MOBILE, "channels": "sms", "postcode": "SW1A 2AA"}, topics=base.topic_set
        )
        with Session(scoped(engine, force.id)) as session:
            person = add_registrant(
                session=session,
                draft=draft,
                source=ConsentSource("test"),
                key=base.suppression_secret,
            )
            session.commit()
            assert person.id is not None
            people[force.code] = person.id
    return make_web(database_url=database_url), people


def post(web: Web, path: str, params: dict[str, str]):  # type: ignore[no-untyped-def]
    # Every force's callbacks are signed with the platform's one Twilio token, for the URL
    # Twilio was given: here the platform's own address.
    url = web.settings.public_url + path
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    return web.client().post(path, data=params, headers={"X-Twilio-Signature": signature})


def sms_status(web: Web, force_id: int) -> str:
    with Session(engine_for(web.settings.database_url)) as session:
        rows = session.exec(select(Subscription).where(Subscription.force_id == force_id))
        return ",".join(row.status for row in rows)


def inbound(to: str, sid: str) -> dict[str, str]:
    return {"From": MOBILE, "To": to, "Body": "STOP", "MessageSid": sid}


def test_a_stop_is_the_force_whose_number_was_texted(platform) -> None:  # type: ignore[no-untyped-def]
    web, people = platform
    ids = {f.code: f.id for f in registry.all_forces(engine_for(web.settings.database_url))}
    # A STOP to Suffolk's number, arriving at the platform's address (the Met's by default)
    reply = post(web, "/twilio/sms/inbound", inbound(SUFFOLK_NUMBER, "SM" + "1" * 32))
    assert reply.status_code == 200 and "Suffolk Constabulary" in reply.text
    # unsubscribes the person from Suffolk only
    assert sms_status(web, ids["suffolk"]) == "unsubscribed"
    assert sms_status(web, ids["met"]) == sms_status(web, ids["dyfed-powys"]) == "active"
    # A STOP to the number the Met and Dyfed-Powys share is the URL's force's: Dyfed-Powys's
    # under its prefix
    reply = post(web, "/f/dyfed-powys/twilio/sms/inbound", inbound(SMS_FROM, "SM" + "2" * 32))
    assert reply.status_code == 200 and "Dyfed-Powys" in reply.text
    assert sms_status(web, ids["dyfed-powys"]) == "unsubscribed"
    assert sms_status(web, ids["met"]) == "active"


def test_a_number_no_force_has_is_refused_and_changes_nothing(platform) -> None:  # type: ignore[no-untyped-def]
    web, people = platform
    ids = {f.code: f.id for f in registry.all_forces(engine_for(web.settings.database_url))}
    for path, params in (
        ("/twilio/sms/inbound", inbound("+441632960999", "SM" + "3" * 32)),
        ("/twilio/sms/inbound", inbound("", "SM" + "4" * 32)),
        (
            "/twilio/sms/status",
            {"MessageSid": "SM" + "5" * 32, "MessageStatus": "delivered", "From": "+4400"},
        ),
        ("/twilio/voice/gather", {"CallSid": "CA" + "6" * 32, "Digits": "9", "To": MOBILE}),
    ):
        reply = post(web, path, params)
        assert reply.status_code == 403, (path, reply.text)
        assert reply.text == "Forbidden: not a number of any force on this platform"
    assert {sms_status(web, i) for i in ids.values()} == {"active"}
