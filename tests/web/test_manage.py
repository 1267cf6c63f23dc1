"""The manage page and one-click unsubscribe behind signed links."""

from __future__ import annotations

import json
import time

from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from broadcast.registrants.links import LinkSigner
from broadcast.store.tables import Registrant
from tests.web.conftest import Web, confirm_link, csrf_token, errors_in
from tests.web.test_subscribe import confirm_email_then_code, signup


def active_registrant(web: Web) -> Registrant:
    """Given: a person signed up for email and SMS and confirmed both."""
    with web.client() as client:
        assert signup(web, client).status_code == 200
        confirm_email_then_code(web, client)
    registrant = web.registrant(email="alex@example.org")
    assert registrant is not None
    assert web.statuses(registrant.id) == {"email": "active", "sms": "active"}
    return registrant


class LongAgoSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 400 * 86400


def signer(web: Web) -> LinkSigner:
    return LinkSigner(web.settings.secret_key.get_secret_value(), web.url)


def test_one_click_unsubscribe_rfc8058(web: Web) -> None:
    registrant = active_registrant(web)
    path = f"/unsubscribe/{signer(web).token(registrant.public_id, 'unsubscribe', 'email')}"
    # A GET (a mail scanner following the link) only shows a button
    with web.client() as client:
        shown = client.get(path)
    assert shown.status_code == 200 and "Unsubscribe</button>" in shown.text
    assert web.statuses(registrant.id)["email"] == "active"
    # The mail provider's POST: no cookie, no CSRF field, just the RFC 8058 body
    response = web.client().post(
        path,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert web.statuses(registrant.id) == {"email": "unsubscribed", "sms": "active"}
    assert ("unsubscribed", "email", "web") in web.ledger(registrant.id)
    # A POST without the one-click body changes nothing (and repeats are harmless)
    assert web.client().post(path, data={"x": "y"}).status_code == 400
    assert web.client().post(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200


def test_forged_altered_and_expired_tokens_change_nothing(web: Web) -> None:
    registrant = active_registrant(web)
    good = signer(web).token(registrant.public_id, "unsubscribe", None)
    forged = LinkSigner("some-other-key", web.url).token(registrant.public_id, "unsubscribe", None)
    altered = good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB")
    wrong_purpose = signer(web).token(registrant.public_id, "manage")
    # A token signed 400 days ago (unsubscribe links live 365 days)
    serializer = URLSafeTimedSerializer(
        web.settings.secret_key.get_secret_value(), salt="broadcast-links", signer=LongAgoSigner
    )
    expired = serializer.dumps([registrant.public_id, "unsubscribe", None])
    with web.client() as client:
        for token in (forged, altered, wrong_purpose, expired, "nonsense"):
            response = client.post(f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"})
            assert response.status_code == 400, token
            assert "Nothing has been changed" in response.text
            if token != wrong_purpose:
                assert client.get(f"/manage/{token}").status_code == 400
        assert "has expired" in client.get(f"/unsubscribe/{expired}").text
    assert web.statuses(registrant.id) == {"email": "active", "sms": "active"}


def test_manage_amend_unsubscribe_download_and_erase(web: Web) -> None:
    registrant = active_registrant(web)
    path = f"/manage/{signer(web).token(registrant.public_id, 'manage')}"
    with web.client() as client:
        page = client.get(path)
        assert page.status_code == 200 and 'value="alex@example.org"' in page.text
        token = csrf_token(client, path)
        # When the person changes their name, topics and email address
        form = {
            "action": "save",
            "csrf_token": token,
            "name": "Alex New",
            "postcode": "SW1A 2AA",
            "channels": ["email", "sms"],
            "email": "alex.new@example.org",
            "mobile": "07911123456",
            "topics": ["fraud", "burglary"],
        }
        saved = client.post(path, data=form)
        assert saved.status_code == 200, errors_in(saved.text)
        # Then the new email is pending until its new link is followed; SMS stays active
        assert web.statuses(registrant.id) == {"email": "pending", "sms": "active"}
        link = confirm_link(web.emails_to("alex.new@example.org")[-1]).removeprefix(web.url)
        client.post(link, data={"csrf_token": csrf_token(client, link)})
        assert web.statuses(registrant.id)["email"] == "active"
        # When they download their data
        data = client.get(f"{path}/data.json")
        view = json.loads(data.text)
        assert view["name"] == "Alex New" and view["topics"] == ["burglary", "fraud"]
        assert "id" not in view and view["consent_history"]
        assert "attachment" in data.headers["content-disposition"]
        # When they stop SMS only
        client.post(path, data={"action": "unsubscribe", "channel": "sms", "csrf_token": token})
        assert web.statuses(registrant.id) == {"email": "active", "sms": "unsubscribed"}
        # When they ask to erase without ticking the box, nothing happens
        refused = client.post(path, data={"action": "erase", "csrf_token": token})
        assert refused.status_code == 400
        erased = client.post(
            path, data={"action": "erase", "confirm_erase": "yes", "csrf_token": token}
        )
        assert "Your details have been deleted" in erased.text
        # Then the link no longer opens anything
        assert client.get(path).status_code == 400
    gone = web.registrant(public_id=registrant.public_id)
    assert gone is not None and gone.email is None and gone.erased_at is not None
    assert ("erased", None, "web") in web.ledger(registrant.id)


def test_unsubscribe_all_from_manage_page_needs_csrf(web: Web) -> None:
    registrant = active_registrant(web)
    path = f"/manage/{signer(web).token(registrant.public_id, 'manage')}"
    with web.client() as client:
        refused = client.post(path, data={"action": "unsubscribe_all"})
        assert refused.status_code == 403
        assert web.statuses(registrant.id) == {"email": "active", "sms": "active"}
        done = client.post(
            path, data={"action": "unsubscribe_all", "csrf_token": csrf_token(client, path)}
        )
    assert done.status_code == 200 and "You have unsubscribed" in done.text
    assert web.statuses(registrant.id) == {"email": "unsubscribed", "sms": "unsubscribed"}
