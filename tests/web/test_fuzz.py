"""Property-based fuzzing of every form and endpoint over real HTTP: whatever arrives (junk
fields, odd Unicode, huge values, wrong content types, valid or broken tokens, signed junk for
the webhooks), the app never answers 5xx."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from broadcast.registrants.links import LinkSigner
from broadcast.store.tables import SubscriptionStatus
from broadcast.text_rules import control_character_problem
from tests.support.twilio_server import AUTH_TOKEN
from tests.web.conftest import Web, csrf_token
from tests.web.test_twilio_webhooks import make_registrant

FIELDS = [
    "name",
    "postcode",
    "email",
    "mobile",
    "landline",
    "areas",
    "topics",
    "channels",
    "named_areas",
    "consent",
    "code",
    "action",
    "channel",
    "confirm_erase",
    "List-Unsubscribe",
]
ACTIONS = ["save", "unsubscribe", "unsubscribe_all", "erase", "resend", "confirm", "x"]
SAMPLES = [
    "",
    "SW1A 2AA",
    "M1 1AE",
    "07911 123456",
    "a@b.co",
    "sms",
    "email",
    "voice",
    "yes",
    "One-Click",
    "burglary",
    "SW1A",
    "123456",
    "+442079460123",
    "\x00",
    "é" * 500,
]
value = st.one_of(st.sampled_from(SAMPLES + ACTIONS), st.text(max_size=60))
form = st.dictionaries(
    st.sampled_from(FIELDS) | st.text(max_size=10), value | st.lists(value, max_size=3), max_size=8
)
junk = st.text(max_size=40).map(lambda t: quote(t, safe=""))
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def fuzz(make_web) -> tuple[Web, dict[str, str]]:  # type: ignore[no-untyped-def]
    web = make_web(web_ip_rate="100000/1m", web_contact_rate="100000/1m", web_code_rate="100000/1m")
    make_registrant(web, SubscriptionStatus.PENDING, channels="sms,voice")
    registrant = web.registrant(mobile="+447911123456")
    assert registrant is not None
    links = LinkSigner(web.settings.secret_key.get_secret_value(), web.url)
    pid = registrant.public_id
    tokens = {
        "manage": links.token(pid, "manage"),
        "unsubscribe": links.token(pid, "unsubscribe", "sms"),
        "confirm": links.token(pid, "confirm", "sms"),
        "confirm-email": links.token(pid, "confirm", "email"),
    }
    return web, tokens


@FUZZ
@given(data=st.data())
def test_forms_never_fail_with_a_server_error(fuzz, data) -> None:  # type: ignore[no-untyped-def]
    web, tokens = fuzz
    token = data.draw(st.sampled_from(list(tokens.values())) | junk)
    path = data.draw(
        st.sampled_from(
            [
                "/subscribe",
                "/confirm/{t}",
                "/manage/{t}",
                "/unsubscribe/{t}",
                "/manage/{t}/data.json",
                "/",
                "/healthz",
                "/{t}",
            ]
        )
    ).format(t=token)
    fields = data.draw(form)
    with web.client() as client:
        if data.draw(st.booleans()):
            fields = {**fields, "csrf_token": csrf_token(client)}
        kind = data.draw(st.sampled_from(["get", "form", "multipart", "raw"]))
        if kind == "get":
            response = client.get(
                path, params={k: v for k, v in fields.items() if isinstance(v, str)}
            )
        elif kind == "form":
            response = client.post(path, data=fields)
        elif kind == "multipart":
            response = client.post(path, data=fields, files={"file": ("x.txt", b"\xff\x00junk")})
        else:
            body = data.draw(st.binary(max_size=200))
            ctype = data.draw(
                st.sampled_from(
                    [
                        "application/x-www-form-urlencoded",
                        "multipart/form-data",
                        "application/json",
                        "text/plain",
                    ]
                )
            )
            response = client.post(path, content=body, headers={"Content-Type": ctype})
    event(f"{path.split('/')[1]} {response.status_code}")
    assert response.status_code < 500, (path, fields, response.text[:300])


TWILIO_FIELDS = [
    "From",
    "To",
    "Body",
    "Digits",
    "MessageSid",
    "MessageStatus",
    "CallSid",
    "CallStatus",
    "ErrorCode",
]


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/twilio/sms/inbound",
            "/twilio/sms/status",
            "/twilio/voice/status",
            "/twilio/voice/gather",
        ]
    ),
    params=st.dictionaries(st.sampled_from(TWILIO_FIELDS), value, max_size=6),
    signed=st.booleans(),
)
def test_webhooks_never_fail_with_a_server_error(fuzz, path, params, signed) -> None:  # type: ignore[no-untyped-def]
    web, _ = fuzz
    headers = {}
    if signed:
        headers["X-Twilio-Signature"] = RequestValidator(AUTH_TOKEN).compute_signature(
            web.url + path, params
        )
    with web.client() as client:
        response = client.post(path, data=params, headers=headers)
    event(f"{path} {response.status_code}")
    assert response.status_code < 500, (path, params, response.text[:300])
    if not signed:
        assert response.status_code == 403


# Text with the characters that used to break things (NUL: a PostgreSQL DataError, a 500; CR/LF:
# attacker lines in an email), around values that otherwise pass validation.
NASTY = st.sampled_from(["\x00", "\r\n", "\n", "\t", "\x1b", "\x7f", "\x85", "\u2028", "\u202e"])
VALID = {
    "name": "Alex Example",
    "postcode": "SW1A 2AA",
    "email": "fuzz@example.org",
    "mobile": "07911 765432",
    "areas": "SW1A",
}


@st.composite
def poisoned_form(draw: st.DrawFn) -> dict[str, object]:
    """A form that would be accepted, with junk or a control character spliced into fields."""
    fields: dict[str, object] = dict(VALID)
    for name in draw(st.lists(st.sampled_from(sorted(VALID)), min_size=1, max_size=3)):
        text = str(fields[name])
        at = draw(st.integers(0, len(text)))
        junk = draw(NASTY | st.text(max_size=5))
        fields[name] = text[:at] + junk + text[at:]
    fields["channels"] = draw(st.lists(st.sampled_from(["email", "sms"]), min_size=1, max_size=2))
    fields["consent"] = "yes"
    fields["action"] = "save"
    return fields


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_forms_with_valid_csrf_never_fail_on_either_database(make_web, database_url, data) -> None:  # type: ignore[no-untyped-def]
    # Given a server on SQLite or PostgreSQL and a registrant's manage link (built once per DB)
    web = _fuzz_web(make_web, database_url)
    path = data.draw(st.sampled_from(["/subscribe", f"/manage/{web.manage_token}"]))
    fields = data.draw(poisoned_form())
    # When a form with a valid CSRF pair and poisoned fields is posted
    with web.client() as client:
        response = client.post(path, data={**fields, "csrf_token": csrf_token(client, path)})
    event(f"{path.split('/')[1]} {response.status_code}")
    # Then there is no server error, and a control character in a field that is kept is a 400
    assert response.status_code < 500, (path, fields, response.text[:300])
    kept = ["name", "postcode", "areas", "mobile"]
    kept += ["email"] if "email" in fields["channels"] else []
    if any(control_character_problem(str(fields[f]).strip()) for f in kept):
        assert response.status_code == 400, (path, fields)
        assert "plain text on one line" in response.text


_BUILT: dict[tuple[int, str], Web] = {}


def _fuzz_web(make_web, database_url: str) -> Web:  # type: ignore[no-untyped-def]
    """One server per database for all examples (hypothesis reuses the function's fixtures)."""
    key = (id(make_web), database_url)
    if key not in _BUILT:
        web = make_web(
            database_url=database_url,
            web_ip_rate="100000/1m",
            web_contact_rate="100000/1m",
            web_code_rate="100000/1m",
        )
        make_registrant(web, SubscriptionStatus.ACTIVE, channels="sms")
        registrant = web.registrant(mobile="+447911123456")
        assert registrant is not None
        links = LinkSigner(web.settings.secret_key.get_secret_value(), web.url)
        web.manage_token = links.token(registrant.public_id, "manage")  # type: ignore[attr-defined]
        _BUILT.clear()
        _BUILT[key] = web
    return _BUILT[key]
