"""Sign-up and double opt-in through the real server: email link from the real SMTP server,
SMS code from the Twilio-compatible server's recorded request."""

from __future__ import annotations

import re

from tests.web.conftest import Web, confirm_link, csrf_token, errors_in, sms_code

MOBILE = "+447911123456"


def signup(web: Web, client, **fields: object):  # type: ignore[no-untyped-def]
    form = {
        "name": "Alex Example",
        "postcode": "SW1A 2AA",
        "channels": ["email", "sms"],
        "email": "alex@example.org",
        "mobile": "07911 123456",
        "topics": ["burglary"],
        "consent": "yes",
        "csrf_token": csrf_token(client),
    }
    form.update(fields)
    return client.post("/subscribe", data=form)


def test_form_is_accessible_and_healthz_answers(web: Web) -> None:
    with web.client() as client:
        page = client.get("/subscribe")
        health = client.get("/healthz")
    assert page.status_code == 200
    # Every input has a label, and the page is branded with the force's name
    for name in ("name", "postcode", "email", "mobile", "landline", "areas"):
        assert f'<label for="{name}">' in page.text
        assert f'id="{name}"' in page.text
    assert "Test Metropolitan Police" in page.text
    assert 'name="viewport"' in page.text
    # Topic labels keep the hyphens that are spelling, and lose the ones that join words
    for shown in ("Anti-social behaviour", "E-crime", "Missing person", "Road safety"):
        assert shown in page.text
    assert health.json() == {"status": "ok"}


def confirm_email_then_code(web: Web, client, email: str = "alex@example.org"):  # type: ignore[no-untyped-def]
    """Open the newest email link, press its button, then enter the code it led to; the
    email confirmation's page and the code's page."""
    path = confirm_link(web.emails_to(email)[-1]).removeprefix(web.url)
    confirmed = client.post(path, data={"csrf_token": csrf_token(client, path)})
    found = re.search(r'href="(/confirm/[^"]+)">Enter the code', confirmed.text)
    assert found, confirmed.text
    code = sms_code(web.sms_to(MOBILE)[-1])
    location = found[1]
    done = client.post(location, data={"code": code, "csrf_token": csrf_token(client, location)})
    return confirmed, done


def test_sign_up_confirms_email_first_then_texts_the_code(web: Web) -> None:
    texts_before = len(web.sms_to(MOBILE))
    with web.client() as client:
        # When someone signs up for email and SMS
        response = signup(web, client)
        # Then they are asked to check their email, and no text has gone out yet
        assert response.status_code == 200, errors_in(response.text)
        assert "Check your messages" in response.text and "Once your email" in response.text
        assert len(web.sms_to(MOBILE)) == texts_before
        registrant = web.registrant(email="alex@example.org")
        assert registrant is not None and registrant.mobile == MOBILE
        assert web.statuses(registrant.id) == {"email": "pending", "sms": "pending"}

        # When the email link from the SMTP server is opened, nothing changes on a GET
        link = confirm_link(web.emails_to("alex@example.org")[-1])
        path = link.removeprefix(web.url)
        shown = client.get(path)
        assert "Confirm my email address" in shown.text
        assert web.statuses(registrant.id)["email"] == "pending"
        # And when its button is pressed, the email is confirmed and the code is texted
        confirmed, done = confirm_email_then_code(web, client)
        assert confirmed.status_code == 200 and "Enter the code" in confirmed.text
        assert len(web.sms_to(MOBILE)) == texts_before + 1
        assert done.status_code == 200 and "You are signed up" in done.text

    # Then both are active, and the ledger has the sign-up (with wording) and confirmations
    assert web.statuses(registrant.id) == {"email": "active", "sms": "active"}
    events = web.ledger(registrant.id)
    assert ("subscribed", "sms", "web") in events and ("confirmed", "sms", "web") in events
    assert ("confirmed", "email", "web") in events
    # And the used email link does not work twice
    with web.client() as client:
        again = client.post(path, data={"csrf_token": csrf_token(client, path)})
    assert again.status_code == 400


def test_validation_errors_are_summarised_and_linked(web: Web) -> None:
    with web.client() as client:
        response = signup(web, client, email="not-an-email", mobile="", consent="", postcode="")
    assert response.status_code == 400
    assert "There is a problem" in response.text
    assert 'href="#email"' in response.text and 'href="#consent"' in response.text
    assert 'href="#postcode"' in response.text and 'href="#mobile"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert web.registrant(email="not-an-email") is None


def test_postcode_outside_the_force_is_refused_naming_the_force(web: Web) -> None:
    with web.client() as client:
        response = signup(web, client, postcode="M1 1AE")
    assert response.status_code == 400
    assert "M1 1AE is outside the area Test Metropolitan Police covers" in response.text
    assert web.registrant(email="alex@example.org") is None


def test_missing_or_wrong_csrf_token_changes_nothing(web: Web) -> None:
    with web.client() as client:
        response = signup(web, client, csrf_token="0" * 64)
    with web.client() as fresh:  # no cookie at all
        fresh_response = fresh.post("/subscribe", data={"email": "alex@example.org"})
    assert response.status_code == 403 and fresh_response.status_code == 403
    assert web.registrant(email="alex@example.org") is None


def _strip_tokens(text: str) -> str:
    text = re.sub(r"/confirm/[^\"?]+", "/confirm/T", text)
    text = re.sub(r'nonce="[A-Za-z0-9_-]+"', 'nonce="N"', text)  # a new CSP nonce per page
    return re.sub(r'value="[0-9a-f]{64}"', 'value="C"', text)


def test_same_response_whether_or_not_the_address_is_registered(web: Web) -> None:
    # Given one registered person
    sent_before = len(web.sms_to(MOBILE))
    with web.client() as client:
        first = signup(web, client, channels=["sms"])
    # When the same addresses, and then new ones, are submitted by someone else
    with web.client() as client:
        existing = signup(web, client, channels=["sms"])
        existing_page = client.get(existing.headers["location"])
    with web.client() as client:
        new = signup(
            web, client, channels=["sms"], email="sam.household@example.org", mobile="07920654321"
        )
        new_page = client.get(new.headers["location"])
    # Then the responses cannot be told apart
    assert first.status_code == existing.status_code == new.status_code == 303
    assert _strip_tokens(existing_page.text) == _strip_tokens(new_page.text)
    # And the registered person got a fresh code, not a second registration
    assert len(web.sms_to(MOBILE)) == sent_before + 2


def test_wrong_codes_lock_then_a_new_code_works(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web(confirmation_max_attempts=3)
    with web.client() as client:
        location = signup(web, client, channels=["sms"]).headers["location"]
        token = csrf_token(client, location)
        real = sms_code(web.sms_to(MOBILE)[-1])
        wrong = "000000" if real != "000000" else "111111"
        for _ in range(3):
            assert (
                "That code is not right"
                in client.post(location, data={"code": wrong, "csrf_token": token}).text
            )
        # Locked: even the right code is refused now
        locked = client.post(location, data={"code": real, "csrf_token": token})
        assert "Too many wrong codes" in locked.text
        client.post(location, data={"action": "resend", "csrf_token": token})
        fresh = sms_code(web.sms_to(MOBILE)[-1])
        ok = client.post(location, data={"code": fresh, "csrf_token": token})
    assert "You are signed up" in ok.text


def test_per_contact_and_per_ip_rate_limits(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web(web_contact_rate="2/1h", web_ip_rate="5/1h")
    emails_before = len(web.emails_to("alex@example.org"))
    with web.client() as client:
        codes = [signup(web, client, channels=["email"]).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        others = [
            signup(web, client, channels=["email"], email=f"p{i}@example.org").status_code
            for i in range(3)
        ]
    # The IP had 5 posts: the 6th is refused whatever the address
    assert others[:2] == [200, 200] and others[2] == 429
    assert len(web.emails_to("alex@example.org")) == emails_before + 2


def test_voice_sign_up_places_a_confirmation_call(web: Web) -> None:
    calls_before = len(web.calls_to("+442079460123"))
    with web.client() as client:
        response = signup(
            web, client, channels=["voice"], mobile="", landline="020 7946 0123", email=""
        )
    assert response.status_code == 200 and "We will call you" in response.text
    *_, twiml = web.calls_to("+442079460123")
    assert len(web.calls_to("+442079460123")) == calls_before + 1
    assert "press 1" in twiml and "/twilio/voice/gather" in twiml
    registrant = web.registrant(landline="+442079460123")
    assert registrant is not None and web.statuses(registrant.id) == {"voice": "pending"}
    assert web.twilio.violations == []


def test_code_entry_is_rate_limited_per_sign_up(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web(web_code_rate="2/1h")
    with web.client() as client:
        location = signup(web, client, channels=["sms"]).headers["location"]
        token = csrf_token(client, location)
        statuses = [
            client.post(location, data={"code": "999999", "csrf_token": token}).status_code
            for _ in range(3)
        ]
    assert statuses[2] == 429


def test_a_second_person_on_a_households_landline_signs_up_as_themselves(web: Web) -> None:
    # Given Alex registered with their email and the household's landline for calls
    emails_before = len(web.emails_to("sam.household@example.org"))
    with web.client() as client:
        first = signup(
            web, client, channels=["email", "voice"], mobile="", landline="020 7946 1234"
        )
        assert first.status_code in (200, 303), errors_in(first.text)
        # When Sam signs up on the web with their own email and the same landline
        second = signup(
            web,
            client,
            name="Sam Example",
            channels=["email", "voice"],
            email="sam.household@example.org",
            mobile="",
            landline="020 7946 1234",
        )
        assert second.status_code in (200, 303), errors_in(second.text)
    # Then Sam is a registrant of their own, pending on both channels, and Alex is untouched
    alex = web.registrant(email="alex@example.org")
    sam = web.registrant(email="sam.household@example.org")
    assert alex is not None and sam is not None and alex.id != sam.id
    assert alex.name == "Alex Example" and sam.name == "Sam Example"
    assert alex.landline == sam.landline == "+442079461234"
    assert web.statuses(sam.id) == {"email": "pending", "voice": "pending"}
    assert len(web.emails_to("sam.household@example.org")) == emails_before + 1
