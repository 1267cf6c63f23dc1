"""Control characters in any text field are a 400 with a clear message, on SQLite and
PostgreSQL (where a NUL used to be a server error, and SQLite stored it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from broadcast.store.tables import SubscriptionStatus
from broadcast.text_rules import control_character_problem
from tests.web.conftest import Web, csrf_token, errors_in
from tests.web.test_manage import signer
from tests.web.test_subscribe import signup
from tests.web.test_twilio_webhooks import make_registrant

BAD_NAMES = [
    "Eve\x00Null",
    "Eve Inject\r\nBcc: attacker@evil.example",
    "Eve\u2028Line",
    "E\u202eve",
]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("Alex Example", None),
        ("Zoë O'Brien-Łukasz 李", None),
        ("a\x00b", "contains a NUL byte: use plain text on one line"),
        ("a\r\nb", "contains a line break: use plain text on one line"),
        ("a\u2029b", "contains a line break: use plain text on one line"),
        ("a\tb", "contains a tab: use plain text on one line"),
        ("a\x1bb", "contains a control character (U+001B): use plain text on one line"),
        ("a\x85b", "contains a control character (U+0085): use plain text on one line"),
        ("a\u202eb", "contains a control character (U+202E): use plain text on one line"),
    ],
)
def test_control_character_problem(value: str, problem: str | None) -> None:
    assert control_character_problem(value) == problem


@pytest.mark.parametrize("name", BAD_NAMES)
def test_sign_up_with_a_control_character_is_a_400_on_both_databases(
    make_web: Callable[..., Web], database_url: str, name: str
) -> None:
    web = make_web(database_url=database_url)
    with web.client() as client:
        response = signup(web, client, name=name, channels=["email"])
        ok = signup(web, client, name="Eve Plain", channels=["email"], email="ok@example.org")
    assert response.status_code == 400, response.text[:300]
    assert any(
        "Name contains" in e and "plain text on one line" in e for e in errors_in(response.text)
    )
    assert web.registrant(email="alex@example.org") is None
    assert ok.status_code == 200  # the server is still fine for the next person


@pytest.mark.parametrize("field", ["name", "postcode", "email", "areas"])
def test_every_text_field_of_the_manage_form_refuses_control_characters(
    make_web: Callable[..., Web], database_url: str, field: str
) -> None:
    web = make_web(database_url=database_url)
    rid = make_registrant(web, SubscriptionStatus.ACTIVE, channels="sms")
    with web.session() as session:
        from broadcast.store.tables import Registrant

        registrant = session.get(Registrant, rid)
        assert registrant is not None
        path = f"/manage/{signer(web).token(registrant.public_id, 'manage')}"
    form = {
        "action": "save",
        "name": "Sam Example",
        "postcode": "SW1A 2AA",
        "mobile": "07911 123456",
        "email": "sam@example.org",
        "channels": ["sms", "email"],
        "areas": "SW1A",
    }
    form[field] = form[field][:3] + "\x00" + form[field][3:]
    with web.client() as client:
        response = client.post(path, data={**form, "csrf_token": csrf_token(client, path)})
    assert response.status_code == 400, response.text[:300]
    assert any("contains a NUL byte" in e for e in errors_in(response.text)), errors_in(
        response.text
    )
    saved = web.registrant(public_id=registrant.public_id)
    assert saved is not None and saved.name is None and saved.email is None
