"""Each force's registrant pages at its own host and under /f/<code>/ (three forces, one app,
SQLite and PostgreSQL): its name, logo and colour; links and forms that keep the prefix; a host
no force claims answered with a 404 that names none; one force's links worthless on another's
pages; sign-up offering the force that covers a postcode."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from broadcast.forces import registry
from broadcast.forces.profile import settings_for
from broadcast.registrants.links import LinkSigner
from broadcast.settings import Settings
from broadcast.store.engine import engine_for
from broadcast.store.tables import Registrant
from broadcast.store.tenancy import national
from broadcast.web.csrf import COOKIE
from broadcast.web.routing import choose
from tests.support.smtp_server import SmtpTestServer
from tests.support.twilio_server import TwilioTestServer
from tests.web.conftest import CSRF_RE, TLS, Web, errors_in, web_settings

MET, SUFFOLK, DYFED = "met.test", "alerts.suffolk.test", "dyfed-powys"
NAMES = ("Metropolitan Police", "Suffolk Constabulary", "Heddlu Dyfed-Powys Police")
BRANDS = {
    MET: ("Metropolitan Police", "https://met.test/logo.png", "#112233"),
    SUFFOLK: ("Suffolk Constabulary", "https://alerts.suffolk.test/crest.png", "#445566"),
}


@pytest.fixture
def forces(
    make_web: Callable[..., Web],
    database_url: str,
    tmp_path: Path,
    smtp: SmtpTestServer,
    twilio: TwilioTestServer,
) -> Web:
    """Given a platform of three forces: the Met and Suffolk on hosts of their own, Dyfed-Powys
    on none (it is reached under /f/dyfed-powys/), each with its own areas and look."""
    base = web_settings(tmp_path, 0, smtp, twilio, database_url=database_url)
    engine = engine_for(database_url)
    registry.amend(
        engine,
        base,
        "default",
        new_code="met",
        name="Metropolitan Police",
        hosts=[MET],
        set_values={"force_logo_url": BRANDS[MET][1], "brand_colour": BRANDS[MET][2]},
    )
    registry.add(
        engine,
        base,
        "suffolk",
        "Suffolk Constabulary",
        hosts=[SUFFOLK, "suffolk.test"],
        profile={
            "area_postcodes": "IP,CO",
            "force_logo_url": BRANDS[SUFFOLK][1],
            "brand_colour": BRANDS[SUFFOLK][2],
        },
    )
    registry.add(engine, base, DYFED, NAMES[2], profile={"area_postcodes": "SA,LD"})
    return make_web(database_url=database_url)


def client(web: Web, host: str | None = None) -> httpx.Client:
    headers = {"Host": host} if host else {}
    return httpx.Client(base_url=web.url, headers=headers, timeout=10, verify=TLS)


def token_of(page: httpx.Response) -> str:
    match = CSRF_RE.search(page.text)
    assert match, page.text
    return match[1]


def sign_up(http: httpx.Client, root: str = "", **fields: object) -> httpx.Response:
    page = http.get(f"{root}/subscribe")
    form: dict[str, object] = {
        "name": "Sam Example",
        "postcode": "SW1A 2AA",
        "channels": ["email"],
        "email": "sam@example.org",
        "consent": "yes",
        "csrf_token": token_of(page),
    }
    form.update(fields)
    # A force at its host is at https://<host>, so its CSRF cookie is Secure, and a client
    # speaking plain http to the test server would not send it back: it is sent by hand.
    cookie = page.cookies.get(COOKIE) or http.cookies.get(COOKIE)
    return http.post(f"{root}/subscribe", data=form, headers={"Cookie": f"{COOKIE}={cookie}"})


def owner_of(web: Web, email: str) -> tuple[int, str]:
    """(force id, public id) of the registrant with `email`, read as the platform."""
    engine = national(engine_for(web.settings.database_url))
    with engine.connect() as conn:
        row = conn.execute(
            select(Registrant.force_id, Registrant.public_id).where(Registrant.email == email)
        ).one()
    return int(row[0]), str(row[1])


def force_id(web: Web, code: str) -> int:
    return registry.by_code(engine_for(web.settings.database_url), code).id


def message_text(page: httpx.Response) -> str:
    """A message page's heading and paragraph (what it says, without its tokens)."""
    found = re.search(r"<h1>(.*?)</h1>\s*<p>(.*?)</p>", page.text, re.S)
    assert found, page.text
    return f"{found[1]} / {found[2]}"


def test_pages_at_each_forces_host_carry_its_name_logo_and_colour(forces: Web) -> None:
    for host, (name, logo, colour) in BRANDS.items():
        # When the sign-up page is asked for at the force's host (any case, any port)
        with client(forces, host.upper() + ":8443") as http:
            page = http.get("/subscribe")
        # Then it is that force's, and names no other force
        assert page.status_code == 200
        assert f"<p>{name} community alerts</p>" in page.text
        assert f'<img src="{logo}" alt="{name}">' in page.text
        assert f"--brand: {colour};" in page.text
        assert all(other not in page.text for other in NAMES if other != name)
    # And a force's second host is its too
    with client(forces, "suffolk.test") as http:
        assert "Suffolk Constabulary community alerts" in http.get("/subscribe").text


def test_a_force_with_no_host_is_served_under_its_prefix_and_its_forms_stay_there(
    forces: Web,
) -> None:
    # Given the platform's shared address, which no force claims
    with client(forces) as http:
        # When someone opens Dyfed-Powys's pages under /f/dyfed-powys/
        home = http.get("/f/dyfed-powys/")
        page = http.get("/f/dyfed-powys/subscribe")
        # Then they are its, and every form and script on them stays under the prefix
        assert home.status_code == 303 and home.headers["location"] == "/f/dyfed-powys/subscribe"
        bare = http.get("/f/dyfed-powys", follow_redirects=True)
        assert bare.url.path == "/f/dyfed-powys/subscribe", bare.history
        assert page.status_code == 200 and f"{NAMES[2]} community alerts" in page.text
        assert 'action="/f/dyfed-powys/subscribe"' in page.text
        assert 'src="/f/dyfed-powys/challenge.js"' in page.text
        assert http.get("/f/dyfed-powys/challenge.js").status_code == 200
        # And a form shown again with its errors still posts under the prefix
        refused = sign_up(http, "/f/dyfed-powys", postcode="SA1 1AA", consent="")
        assert refused.status_code == 400 and 'action="/f/dyfed-powys/subscribe"' in refused.text
        # When they sign up there (a text-only sign-up goes on to its code page)
        done = sign_up(http, "/f/dyfed-powys", postcode="SA1 1AA", email="dai@example.org")
        texted = sign_up(
            http,
            "/f/dyfed-powys",
            postcode="LD1 5AA",
            channels=["sms"],
            email="",
            mobile="07911 123456",
        )
        assert texted.status_code == 303, (texted.status_code, errors_in(texted.text))
        code_page = http.get(texted.headers["location"])
    # Then the registrant is Dyfed-Powys's, and the code page and its forms keep the prefix
    assert done.status_code == 200, errors_in(done.text)
    assert "Check your messages" in done.text and NAMES[2] in done.text
    assert owner_of(forces, "dai@example.org")[0] == force_id(forces, DYFED)
    assert texted.headers["location"].startswith("/f/dyfed-powys/confirm/")
    assert code_page.status_code == 200
    assert 'action="/f/dyfed-powys/confirm/' in code_page.text


def test_a_host_no_force_claims_gets_a_404_that_names_no_force(forces: Web) -> None:
    with client(forces, "nobody.example") as http:
        answers = [http.get(p) for p in ("/subscribe", "/", "/manage/x", "/f/nobody/subscribe")]
        # (the process's own checks answer on any host; a wrong method there names no force)
        health, ready = http.get("/healthz"), http.get("/readyz")
        answers.append(http.post("/healthz"))
    for answer in answers:
        assert answer.status_code in (404, 405)
        assert "Page not found" in answer.text
        assert all(name not in answer.text for name in (*NAMES, forces.settings.force_name))
        assert "community alerts" not in answer.text and "set-cookie" not in answer.headers
    assert health.status_code == 200 and ready.status_code == 200


def test_a_forces_link_on_another_forces_pages_is_an_invalid_link(forces: Web) -> None:
    # Given someone signed up with the Met at its host
    with client(forces, MET) as http:
        assert sign_up(http, email="kim@example.org").status_code == 200
    met_id, public_id = owner_of(forces, "kim@example.org")
    assert met_id == force_id(forces, "met")
    signer = LinkSigner(forces.settings.secret_key.get_secret_value(), forces.url)
    links = {
        "manage": f"/manage/{signer.token(public_id, 'manage')}",
        "unsubscribe": f"/unsubscribe/{signer.token(public_id, 'unsubscribe', 'email')}",
        "confirm": f"/confirm/{signer.token(public_id, 'confirm', 'email')}",
    }
    with client(forces, MET) as http:
        # Their links work on the Met's pages
        assert all(http.get(path).status_code == 200 for path in links.values())
    with client(forces, SUFFOLK) as http:
        for purpose, path in links.items():
            # When one of them is opened on Suffolk's pages, or under Dyfed-Powys's prefix
            theirs = http.get(path)
            prefixed = http.get(f"/f/{DYFED}{path}")
            forged = http.get(f"/{purpose}/{path.rsplit('/', 1)[1][:-4]}AAAA")
            # Then it says exactly what a forged link says
            assert theirs.status_code == forged.status_code == prefixed.status_code == 400
            assert message_text(theirs) == message_text(forged) == message_text(prefixed)
            assert "This link is not valid" in theirs.text
        # And a one-click unsubscribe posted there changes nothing
        http.post(links["unsubscribe"], data={"List-Unsubscribe": "One-Click"})
    with forces.session() as session:
        registrant = session.scalars(
            select(Registrant).where(Registrant.public_id == public_id)
        ).one()
        assert forces.statuses(registrant.id) == {"email": "pending"}


def test_sign_up_outside_the_force_offers_the_force_that_covers_the_postcode(
    forces: Web,
) -> None:
    with client(forces, MET) as http:
        # When someone in Ipswich signs up on the Met's pages
        ipswich = sign_up(http, postcode="IP1 1AA", email="ip@example.org")
        # Or follows an area in Colchester
        colchester = sign_up(http, areas="CO1", email="co@example.org")
        # Or lives where no force on the platform covers
        cardiff = sign_up(http, postcode="CF10 1AA", email="cf@example.org")
    # Then Ipswich and Colchester are offered Suffolk's pages, Cardiff the national finder
    offer = "Sign up with Suffolk Constabulary at https://alerts.suffolk.test/subscribe instead"
    assert ipswich.status_code == 400 and offer in ipswich.text
    assert "IP1 1AA is outside the area Metropolitan Police covers" in ipswich.text
    assert colchester.status_code == 400 and offer in colchester.text
    assert cardiff.status_code == 400 and forces.settings.other_forces_url in cardiff.text
    assert "Suffolk" not in cardiff.text
    with client(forces, SUFFOLK) as http:
        # And Suffolk's pages send a London postcode to the Met's
        london = sign_up(http, postcode="SW1A 2AA", email="sw@example.org")
    assert "Sign up with Metropolitan Police at https://met.test/subscribe instead" in london.text


def test_messages_link_to_the_forces_host(forces: Web) -> None:
    # When someone signs up on Suffolk's pages
    with client(forces, SUFFOLK) as http:
        assert sign_up(http, postcode="IP1 1AA", email="ed@example.org").status_code == 200
    # Then the confirmation email is Suffolk's, its link on Suffolk's host
    email = forces.emails_to("ed@example.org")[-1]  # (the SMTP server serves every test)
    assert "Suffolk Constabulary" in email
    assert re.search(r"https://alerts\.suffolk\.test/confirm/\S+", email), email


def test_a_single_force_install_with_no_hosts_answers_on_every_host(web: Web) -> None:
    for host in ("alerts.example.police.uk", "10.0.0.7:8000", None):
        with client(web, host) as http:
            page = http.get("/subscribe")
        assert page.status_code == 200 and "Test Metropolitan Police" in page.text
        assert 'action="/subscribe"' in page.text


def test_a_forces_address_its_own_its_first_hosts_or_under_its_prefix() -> None:
    base = Settings(public_url="https://platform.example")
    assert settings_for(base, "A", {}, ("a.example", "b.example")).public_url == (
        "https://a.example"
    )
    assert settings_for(base, "A", {"public_url": "https://x.example/f/a"}, ("a.example",)) == (
        settings_for(base, "A", {"public_url": "https://x.example/f/a"})
    )
    assert settings_for(base, None, {}).public_url == "https://platform.example"
    # With neither, a force is under its prefix on the platform's host; the platform's own
    # force (BROADCAST_FORCE's, else the first) keeps the bare address
    assert settings_for(base, "A", {}, prefix="/f/a").public_url == "https://platform.example/f/a"
    first, other = registry.ForceInfo(1, "met", "Met"), registry.ForceInfo(3, "dyfed-powys", "D")
    assert first.settings(base).public_url == "https://platform.example"
    assert other.settings(base).public_url == "https://platform.example/f/dyfed-powys"
    named = Settings(public_url="https://platform.example", force="dyfed-powys")
    assert other.settings(named).public_url == "https://platform.example"
    assert first.settings(named).public_url == "https://platform.example/f/met"


def test_which_force_a_request_is_for() -> None:
    a = registry.ForceInfo(1, "met", "Met", ("met.test",))
    b = registry.ForceInfo(2, "suffolk", "Suffolk", ("suffolk.test",))
    c = registry.ForceInfo(3, "dyfed-powys", "Dyfed-Powys")
    forces = [a, b, c]

    def chosen(path: str, host: str, named: str | None = None) -> tuple[int | None, str]:
        force, prefix = choose(forces, path, host, named=named, home=a)
        return (force.id if force else None, prefix)

    # The prefix first (on any host), then the host, then BROADCAST_FORCE's force
    assert chosen("/f/dyfed-powys/manage/t", "suffolk.test") == (3, "/f/dyfed-powys")
    assert chosen("/fx/subscribe", "suffolk.test") == (2, "")
    assert chosen("/f/nobody/subscribe", "suffolk.test") == (None, "")
    assert chosen("/subscribe", "Suffolk.Test:443") == (2, "")
    assert chosen("/subscribe", "elsewhere.test", named="dyfed-powys") == (3, "")
    # A page on a host no force claims: none; the platform's own routes: the first force
    assert chosen("/subscribe", "elsewhere.test") == (None, "")
    assert chosen("/twilio/sms/inbound", "elsewhere.test") == (1, "")
    assert chosen("/readyz", "10.0.0.7") == (1, "")
    # The only force answers everywhere
    assert choose([c], "/subscribe", "anything", named=None, home=c) == (c, "")
