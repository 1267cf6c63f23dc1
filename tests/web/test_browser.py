"""The whole registrant journey in a real headless browser (Debian's chromium via Playwright):
sign up -> open the email link and confirm -> enter the SMS code that follows -> manage ->
unsubscribe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.web.conftest import Web, confirm_link, sms_code

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def page():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash tests/support/install_browser.sh` (apt-get install "
            "chromium) before the tests"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        context.set_default_timeout(10_000)
        yield context.new_page()
        browser.close()


def journey(web: Web, page) -> None:  # type: ignore[no-untyped-def]
    mobile, email = "+447911123456", "browser@example.org"
    refused = []  # what the Content-Security-Policy blocked (Chromium reports it on the console)
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    # Given the sign-up page, with an error first: no consent ticked
    page.goto(web.url + "/subscribe")
    page.get_by_label("Your postcode").fill("SW1A 2AA")
    page.get_by_role("checkbox", name="Text message").check()
    page.get_by_label("Email address (for email alerts)").fill(email)
    page.get_by_label("Mobile number (for text messages)").fill("07911 123456")
    page.get_by_label("Burglary").check()
    page.get_by_role("button", name="Sign up").click()
    # Then the error summary has focus and links to the consent box
    assert page.title().startswith("Error:")
    assert page.evaluate("document.activeElement.className") == "error-summary"
    page.get_by_role("link", name="Tick the box to say you agree to get alerts").click()
    page.get_by_label("I agree to get community alerts").check()
    page.get_by_role("button", name="Sign up").click()
    # Then the email comes first (the code is texted once the email is confirmed)
    page.get_by_role("heading", name="Check your messages").wait_for()
    # When the email link is opened and confirmed
    page.goto(confirm_link(web.emails_to(email)[-1]))
    page.get_by_role("button", name="Confirm my email address").click()
    page.get_by_role("heading", name="You are signed up").wait_for()
    # And the code from the text message that follows is entered
    page.get_by_role("link", name="Enter the code").click()
    page.get_by_role("heading", name="Enter the code we sent you").wait_for()
    page.get_by_label("Code from the text message").fill(sms_code(web.sms_to(mobile)[-1]))
    page.get_by_role("button", name="Confirm", exact=True).click()
    page.get_by_role("heading", name="You are signed up").wait_for()
    registrant = web.registrant(email=email)
    assert registrant is not None
    assert web.statuses(registrant.id) == {"email": "active", "sms": "active"}
    # When they manage their alerts: add fraud, save
    page.get_by_role("link", name="manage your alerts now").click()
    page.get_by_role("heading", name="Your community alerts").wait_for()
    page.get_by_label("Fraud").check()
    page.get_by_role("button", name="Save changes").click()
    assert "Your changes have been saved." in page.content()
    assert page.get_by_label("Fraud").is_checked()
    # And stop text messages only, then everything
    page.get_by_role("button", name="Stop text messages").click()
    page.get_by_role("heading", name="You have unsubscribed").wait_for()
    assert web.statuses(registrant.id) == {"email": "active", "sms": "unsubscribed"}
    page.get_by_role("link", name="Back to your alert settings").click()
    page.get_by_role("button", name="Unsubscribe from everything").click()
    page.get_by_role("heading", name="You have unsubscribed").wait_for()
    assert web.statuses(registrant.id) == {"email": "unsubscribed", "sms": "unsubscribed"}
    assert re.search(r"sign up again", page.content())
    assert refused == []


def test_pages_keep_their_look_under_a_csp_without_unsafe_inline(  # type: ignore[no-untyped-def]
    make_web, page, tmp_path: Path
) -> None:
    web = make_web(brand_colour="#00703c")
    refused = []
    page.on("securitypolicyviolation", lambda e: refused.append(e))
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    response = page.goto(web.url + "/subscribe")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    # The style block applies: the header is in the force's colour, the button green, the
    # skip link off screen
    header = page.evaluate("getComputedStyle(document.querySelector('header')).backgroundColor")
    button = page.evaluate("getComputedStyle(document.querySelector('button')).backgroundColor")
    skip = page.evaluate("getComputedStyle(document.querySelector('.skip')).left")
    assert (header, button, skip) == ("rgb(0, 112, 60)", "rgb(0, 112, 60)", "-9999px")
    page.screenshot(path=str(tmp_path / "subscribe.png"), full_page=True)
    assert refused == []


def test_journey_in_a_real_browser(make_web, page) -> None:  # type: ignore[no-untyped-def]
    journey(make_web(), page)


def test_journey_on_postgresql(make_web, page, postgres_url) -> None:  # type: ignore[no-untyped-def]
    journey(make_web(database_url=postgres_url), page)


def test_the_first_party_script_solves_the_sign_up_challenge(make_web, page) -> None:  # type: ignore[no-untyped-def]
    # Given a server past its challenge threshold, where waiting would take 10 minutes
    web = make_web(web_challenge_after="1/1h", web_challenge_bits=12, web_challenge_wait=600)
    from tests.web.test_pumping import post_signup

    with web.client() as client:
        assert post_signup(client, "first@example.org").status_code == 200
    # When a person signs up in a browser with JavaScript
    page.goto(web.url + "/subscribe")
    page.get_by_label("Your postcode").fill("SW1A 2AA")
    page.get_by_label("Email address (for email alerts)").fill("js@example.org")
    page.get_by_label("I agree to get community alerts").check()
    page.get_by_role("button", name="Sign up").click()
    # Then the script's proof of work lets them through at once
    page.get_by_role("heading", name="Check your messages").wait_for()
    assert len(web.emails_to("js@example.org")) == 1
