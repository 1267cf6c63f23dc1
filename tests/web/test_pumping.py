"""SMS pumping protections: forwarded headers trusted only from configured proxies, caps on
confirmation SMS (global and per number prefix, shared through Redis, alarming on /ops and
/metrics), and the sign-up challenge past a threshold (proof of work, or a wait without
JavaScript)."""

from __future__ import annotations

import hashlib
import os
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from broadcast.web.challenge import leading_zero_bits, solve
from tests.support.servers import free_port
from tests.web.conftest import CSRF_RE, Web, errors_in
from tests.web.test_subscribe import signup

ROOT = Path(__file__).resolve().parents[2]
CHALLENGE_RE = r'name="challenge" value="([^"]+)"'


def procfile_web(port: int) -> list[str]:
    """The Procfile's `web:` command, with this venv's Python and a free port."""
    line = next(
        line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:")
    )
    argv = shlex.split(line.removeprefix("web:").replace("${PORT:-8000}", str(port)))
    assert argv[0] == "uvicorn"
    return [sys.executable, "-m", "uvicorn", *argv[1:]]


def sign_up_from(client: httpx.Client, forwarded_for: str, email: str) -> int:
    page = client.get("/subscribe")
    match = CSRF_RE.search(page.text)
    assert match
    form = {
        "name": "Pat",
        "postcode": "SW1A 2AA",
        "channels": "email",
        "email": email,
        "consent": "yes",
        "csrf_token": match[1],
    }
    headers = {"X-Forwarded-For": forwarded_for}
    return client.post("/subscribe", data=form, headers=headers).status_code


def test_the_procfile_web_process_trusts_no_forwarded_header_by_default(tmp_path: Path) -> None:
    # Given the web process exactly as the Procfile starts it, with a per-IP limit of 3
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("BROADCAST_")},
        "BROADCAST_DATABASE_URL": f"sqlite:///{tmp_path / 'procfile.db'}",
        "BROADCAST_SECRET_KEY": secrets.token_urlsafe(32),
        "BROADCAST_OUTBOX_DIR": str(tmp_path / "outbox"),
        "BROADCAST_WEB_IP_RATE": "3/1h",
        "BROADCAST_WEB_CONTACT_RATE": "100/1h",
    }
    process = subprocess.Popen(
        procfile_web(port), env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the Procfile's web process did not start"
                time.sleep(0.2)
        # When sign-ups from loopback claim a new X-Forwarded-For each time
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses = [
                sign_up_from(client, f"203.0.113.{i}", f"p{i}@example.org") for i in range(5)
            ]
    finally:
        process.terminate()
        process.wait(10)
    # Then the header is ignored: the real peer's limit of 3 holds
    assert statuses == [200, 200, 200, 429, 429]


def test_a_configured_proxy_is_trusted(make_web: Callable[..., Web]) -> None:
    web = make_web(forwarded_allow_ips="127.0.0.1", web_ip_rate="2/1h")
    with web.client() as client:
        rotating = [sign_up_from(client, f"198.51.100.{i}", f"r{i}@example.org") for i in range(3)]
        same = [sign_up_from(client, "198.51.100.77", f"s{i}@example.org") for i in range(3)]
    assert rotating == [200, 200, 200]  # each forwarded client has its own limit
    assert same == [200, 200, 429]


def sms_signup(web: Web, mobile: str) -> int:
    with web.client() as client:
        return signup(web, client, channels=["sms"], email="", mobile=mobile).status_code


CAPS = {"confirmation_sms_prefix_rate": "2/1h", "confirmation_sms_rate": "3/1h"}


def test_confirmation_sms_caps_per_prefix_and_in_all_alarm_operators(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(ops_token="ops-test-token", **CAPS)
    numbers = ["+447911100001", "+447911100002", "+447911100003", "+447800100004", "+447700100005"]
    # When five people sign up by SMS: three in one prefix, then two in others
    assert [sms_signup(web, n) for n in numbers] == [303] * 5
    # Then the prefix cap stops the third of 447911, and the global cap the fifth in all
    assert [len(web.sms_to(n)) for n in numbers] == [1, 1, 0, 1, 0]
    # And operators see both caps on /metrics and /ops
    auth = {"Authorization": "Bearer ops-test-token"}
    with web.client() as client:
        metrics = client.get("/metrics", headers=auth).text
        ops = client.get("/ops", headers=auth).text
    assert 'broadcast_confirmation_sms_capped{cap="prefix"} 1.0' in metrics
    assert 'broadcast_confirmation_sms_capped{cap="global"} 1.0' in metrics
    assert "prefix cap reached" in ops and "global cap reached" in ops
    assert "447911" not in ops  # the alarm names the cap, not the numbers


def test_confirmation_sms_caps_are_shared_through_redis(
    make_web: Callable[..., Web], redis_url: str
) -> None:
    # Given two web processes' apps sharing one Redis (a fresh key space per test)
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    first = make_web(redis_url=redis_url, **CAPS)
    second = make_web(redis_url=redis_url, **CAPS, database_url=first.settings.database_url)
    # When the first sends two codes to a prefix, the second may send no third
    assert sms_signup(first, "+447911200001") == sms_signup(first, "+447911200002") == 303
    assert sms_signup(second, "+447911200003") == 303
    assert [len(first.sms_to(n)) for n in ("+447911200001", "+447911200002")] == [1, 1]
    assert first.sms_to("+447911200003") == []


def _solves(challenge: str, n: int, bits: int) -> bool:
    digest = hashlib.sha256(f"{challenge}:{n}".encode()).digest()
    return leading_zero_bits(digest) >= bits


def challenge_of(text: str) -> str:
    import re

    match = re.search(CHALLENGE_RE, text)
    assert match, text[:500]
    return match[1]


def post_signup(client: httpx.Client, email: str, **extra: str) -> httpx.Response:
    """A browser's sign-up: the form's CSRF token and challenge, without JavaScript's proof
    unless `extra` gives one."""
    page = client.get("/subscribe").text
    match = CSRF_RE.search(page)
    assert match
    form = {
        "name": "Pat",
        "postcode": "SW1A 2AA",
        "channels": "email",
        "email": email,
        "consent": "yes",
        "csrf_token": match[1],
        "challenge": challenge_of(page),
        **extra,
    }
    return client.post("/subscribe", data=form)


def test_past_the_threshold_a_sign_up_needs_a_solved_challenge(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(web_challenge_after="1/1h", web_challenge_bits=10, web_challenge_wait=600)
    with web.client() as client:
        # Below the threshold nothing is asked
        assert post_signup(client, "a@example.org").status_code == 200
        # Past it, a form without a proof is refused (and says to wait), nothing is sent
        refused = post_signup(client, "b@example.org")
        assert refused.status_code == 400
        assert "wait" in refused.text and "then press Sign up again" in refused.text
        assert web.emails_to("b@example.org") == []
        # A wrong proof is refused too; the right one passes, once
        challenge = challenge_of(client.get("/subscribe").text)
        wrong = next(str(n) for n in range(99) if not _solves(challenge, n, 10))
        bad = post_signup(client, "c@example.org", challenge=challenge, proof=wrong)
        proof = str(solve(challenge, 10))
        good = post_signup(client, "c@example.org", challenge=challenge, proof=proof)
        again = post_signup(client, "d@example.org", challenge=challenge, proof=proof)
        forged = post_signup(client, "e@example.org", challenge="1.2.0.x", proof="0")
    assert bad.status_code == 400
    assert good.status_code == 200, errors_in(good.text)
    assert len(web.emails_to("c@example.org")) == 1
    assert again.status_code == 400 and forged.status_code == 400


def test_without_javascript_a_form_loaded_long_enough_ago_passes(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(web_challenge_after="1/1h", web_challenge_wait=1.5)
    with web.client() as client:
        assert post_signup(client, "a@example.org").status_code == 200
        challenge = challenge_of(client.get("/subscribe").text)
        soon = post_signup(client, "b@example.org", challenge=challenge)
        assert soon.status_code == 400 and challenge_of(soon.text) == challenge  # same clock
        time.sleep(1.6)
        later = post_signup(client, "b@example.org", challenge=challenge)
    assert later.status_code == 200, errors_in(later.text)
    assert len(web.emails_to("b@example.org")) == 1


def test_challenge_script_is_first_party(web: Web) -> None:
    with web.client() as client:
        script = client.get("/challenge.js")
        form = client.get("/subscribe").text
    assert script.status_code == 200 and "crypto.subtle.digest" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert '<script src="/challenge.js" defer></script>' in form and "https://" not in script.text
