"""Only a number's owner lifts its opt-out (a code sent to it, or a START from it), and a
confirmation to an address nobody has proved carries none of the requester's text; SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from twilio.request_validator import RequestValidator

from broadcast.store.tables import SubscriptionStatus
from tests.support.twilio_server import AUTH_TOKEN
from tests.web.conftest import Web, csrf_token, errors_in, sms_code
from tests.web.test_subscribe import signup
from tests.web.test_twilio_webhooks import MOBILE, make_registrant, sms, suppressed


@pytest.fixture
def hook(make_web: Callable[..., Web], database_url: str) -> Web:
    return make_web(database_url=database_url)


def text_in(web: Web, body: str, sid: str) -> httpx.Response:
    """A signed inbound SMS from MOBILE (the app's public URL is its own address here)."""
    params = sms(body, sid=sid)
    path = "/twilio/sms/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(web.url + path, params)
    return web.client().post(path, data=params, headers={"X-Twilio-Signature": signature})


def stranger_signs_up(web: Web) -> str:
    """Someone else's web sign-up naming the opted-out number; the code page's path."""
    with web.client() as client:
        response = signup(web, client, channels=["sms"], name="Mallory", email="")
    assert response.status_code == 303, errors_in(response.text)
    return response.headers["location"].removeprefix(web.url)


@pytest.mark.parametrize("known", [False, True], ids=["unknown-number", "registrant"])
def test_a_strangers_sign_up_never_lifts_a_stop(hook: Web, known: bool) -> None:
    # Given a signed STOP from the number (of a registrant, or of nobody we know)
    if known:
        make_registrant(hook, SubscriptionStatus.ACTIVE, channels="sms")
    assert text_in(hook, "STOP", "SM" + "5" * 32).status_code == 200
    assert suppressed(hook, "sms", MOBILE)
    texts_before = len(hook.sms_to(MOBILE))
    # When someone else signs up on the web with that number, twice
    location = stranger_signs_up(hook)
    stranger_signs_up(hook)
    # Then the number stays suppressed, and it got one code saying what entering it would do
    assert suppressed(hook, "sms", MOBILE)
    texts = hook.sms_to(MOBILE)[texts_before:]
    assert len(texts) == 1, texts
    assert "had opted out" in texts[0] and "re-subscribes this number" in texts[0]
    assert "reply STOP" in texts[0]
    registrant = hook.registrant(mobile=MOBILE)
    assert registrant is not None
    assert hook.statuses(registrant.id)["sms"] == "pending"
    # When the number's owner enters the code sent to it, the opt-out is lifted
    code = sms_code(texts[0])
    with hook.client() as client:
        done = client.post(
            location, data={"code": code, "csrf_token": csrf_token(client, location)}
        )
    assert done.status_code == 200 and "You are signed up" in done.text
    assert not suppressed(hook, "sms", MOBILE)
    assert hook.statuses(registrant.id)["sms"] == "active"


def test_a_start_from_the_number_confirms_and_lifts_the_stop(hook: Web) -> None:
    text_in(hook, "STOP", "SM" + "6" * 32)
    stranger_signs_up(hook)
    reply = text_in(hook, "START", "SM" + "7" * 32)
    assert "now gets" in reply.text
    registrant = hook.registrant(mobile=MOBILE)
    assert registrant is not None and hook.statuses(registrant.id) == {"sms": "active"}
    assert not suppressed(hook, "sms", MOBILE)


def test_a_confirmation_email_carries_none_of_the_requesters_text(hook: Web) -> None:
    # Given a sign-up whose (single-line, valid) name is attacker-written text
    name = "Eve <b>URGENT</b> call 0800 000 000 at evil.example"
    with hook.client() as client:
        response = signup(hook, client, channels=["email"], name=name, email="victim@example.org")
    assert response.status_code == 200, errors_in(response.text)
    # Then the police-branded email to that unproved address holds none of it
    *_, received = [m for m in hook.smtp.messages if "victim@example.org" in m.rcpt_tos]
    plain = received.message.get_body(("plain",)).get_content()
    html = received.message.get_body(("html",)).get_content()
    for text in (plain, html):
        assert "URGENT" not in text and "evil.example" not in text and "Eve" not in text
    assert plain.startswith("Hello,")
