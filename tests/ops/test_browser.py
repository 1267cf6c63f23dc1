"""/ops in a real headless browser (Debian's chromium via Playwright): HTTP basic auth, the
panels, the inline SVG chart, and the in-place refresh (fetch) picking up new figures."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.delivery.processes import ROOT
from tests.ops.conftest import Ops
from tests.ops.web_support import TOKEN, seed, web
from tests.web.test_browser import ARGS, CHROMIUM
from workers.embedded import Backend

SCREENSHOT = ROOT / "test-artifacts" / "ops.png"


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash tests/support/install_browser.sh`")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield launched
        launched.close()


def test_dashboard_renders_and_refreshes_in_a_browser(ops: Ops, browser) -> None:  # type: ignore[no-untyped-def]
    alert_id = seed(ops)
    with web(ops) as url:
        # Without credentials the browser is refused (chromium turns the 401 into an error)
        anonymous = browser.new_context()
        with pytest.raises(Exception, match="ERR_INVALID_AUTH_CREDENTIALS"):
            anonymous.new_page().goto(f"{url}/ops")
        anonymous.close()
        # Given an operator's browser with the token as the basic-auth password
        context = browser.new_context(
            viewport={"width": 1280, "height": 900},
            http_credentials={"username": "duty", "password": TOKEN},
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        errors: list[str] = []
        page.on(
            "console",
            lambda m: (
                errors.append(f"{m.text} {m.location.get('url')}")
                if m.type == "error" and "favicon" not in str(m.location.get("url"))
                else None
            ),
        )
        assert page.goto(f"{url}/ops").status == 200
        # Then the panels show the alert's progress, queues, capacity chart and failures
        page.get_by_role("heading", name="Live alerts").wait_for()
        assert page.locator("#alerts").inner_text().count(f"#{alert_id}") == 1
        # The bar counts only what reached people: 6 sent of 12, 2 failed, 1 undeliverable
        assert "6 / 12 reached" in page.locator("#alerts").inner_text()
        first_row = page.locator("#queues tbody tr").first  # the sms queue
        assert first_row.locator("td").nth(0).inner_text() == "sms"
        assert first_row.locator("td").nth(1).inner_text() == "2"
        assert page.locator("#capacity figure svg").count() == 3  # the charts (bars are SVG too)
        assert page.get_by_role("img", name="sms: 6 segments in the last hour").count() == 1
        assert "unreachable handset" in page.locator("#failures").inner_text()
        # The middle row uses the whole width (on a wide screen too), and no header is clipped
        page.set_viewport_size({"width": 1600, "height": 900})
        row = page.evaluate(
            "[...document.querySelectorAll('#queues, #capacity')].map(s => {"
            " const r = s.getBoundingClientRect(); return [r.left, r.right]; })"
        )
        width = page.evaluate("document.documentElement.clientWidth")
        assert row[1][1] > width - 20 and row[1][0] > row[0][1], (row, width)
        clipped = page.evaluate(
            "[...document.querySelectorAll('th')].filter(th => th.scrollWidth > th.clientWidth)"
            ".map(th => th.textContent)"
        )
        assert clipped == []
        page.set_viewport_size({"width": 1280, "height": 900})
        # When more chunk messages are queued, the page refreshes in place (no reload)
        page.evaluate("window.notReloaded = true")
        Backend(ops.rt).dispatcher.enqueue(ops.chunks(ops.planned_alert(1))[:1] * 3)
        expect(page.locator("#queues tbody tr").first.locator("td").nth(1)).to_have_text(
            "5", timeout=12_000
        )
        assert page.evaluate("window.notReloaded") is True
        assert "Updated" in page.locator("#state").inner_text()
        assert errors == []  # the nonce'd script ran under the page's CSP
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        context.close()
    assert Path(SCREENSHOT).stat().st_size > 10_000
