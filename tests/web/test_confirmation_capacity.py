"""Sign-up confirmations take the channel's capacity like every other message (docs/capacity.md:
each channel inside its capacity across every process): alert texts and confirmation codes
share one SMS window in Redis, and the provider never sees more than the rate between them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

from broadcast.alerts import compose as alerts
from broadcast.alerts import lifecycle
from broadcast.delivery.confirmations import CALL_SECONDS, LINE_RETRY, send_confirmation
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.messages.sms_text import analyse
from broadcast.registrants.signup import PendingMessage
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.web.conftest import Web, csrf_token, sms_code

RATE = 8  # units: SMS segments, as the provider bills them (a code takes 2)
BUSY = "We could not send a new code just now because we are sending a lot of messages."


def sign_up_by_sms(client: httpx.Client, mobile: str) -> httpx.Response:
    form = {
        "name": "Sam Example",
        "postcode": "SW1A 2AA",
        "channels": "sms",
        "mobile": mobile,
        "consent": "yes",
        "csrf_token": csrf_token(client),
    }
    return client.post("/subscribe", data=form)


def ask_for_a_new_code(client: httpx.Client, code_page: str) -> httpx.Response:
    page = client.get(code_page)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token, page.text
    return client.post(code_page, data={"action": "resend", "csrf_token": token[1]})


def enter_code(client: httpx.Client, code_page: str, text: str) -> httpx.Response:
    page = client.get(code_page)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert token, page.text
    form = {"action": "confirm", "code": sms_code(text), "csrf_token": token[1]}
    return client.post(code_page, data=form)


def units(web: Web, since: int) -> int:
    """Segments of the texts the provider accepted after the first `since`."""
    texts = web.twilio.accepted("Messages")[since:]
    return sum(analyse(t.param("Body") or "").segments for t in texts)


def release_an_sms_alert(rt: Runtime, recipients: int) -> int:
    """Send an SMS alert to `recipients` new people as far as capacity allows now; texts sent."""
    add_people(rt.engine, [Person(channels=("sms",)) for _ in range(recipients)])
    alert = alerts.create_alert(
        rt,
        "community-alert",
        {"headline": "Road closed", "message": "Avoid the High Street."},
        ("sms",),
        Targeting(everyone=True),
        operator="pc-test",
        status="draft",
    )
    dispatcher = RecordingDispatcher()
    lifecycle.release(rt, dispatcher, alert.id, operator="pc-test")
    return sum(deliver_chunk(rt, chunk).sent for chunk in dispatcher.take())


def test_confirmation_codes_and_alert_texts_share_the_sms_capacity(
    make_web: Callable[..., Web], redis_url: str
) -> None:
    # Given SMS capacity of 8 segments a minute, shared through Redis by the web app and a
    # delivery worker
    redis.Redis.from_url(redis_url).flushdb()
    web = make_web(redis_url=redis_url, sms_rate=f"{RATE}/1m")
    worker = Runtime(web.settings)
    before = len(web.twilio.accepted("Messages"))
    with web.client() as client:
        # When two people sign up by SMS, then an alert goes to four people, then one more signs up
        first = sign_up_by_sms(client, "07911 123401")
        second = sign_up_by_sms(client, "07911 123402")
        alert_texts = release_an_sms_alert(worker, 4)
        third = sign_up_by_sms(client, "07911 123403")
        # Then the provider got no more than the capacity in all: both codes, then the alert
        # texts that fit, and no code for the third sign-up (whose page is the same as ever: it
        # redirects to the code form, which offers a new code)
        assert units(web, before) <= RATE
        assert [len(web.sms_to(n)) for n in ("+447911123401", "+447911123402")] == [1, 1]
        assert alert_texts >= 1
        assert web.sms_to("+447911123403") == []
        assert [r.status_code for r in (first, second, third)] == [303, 303, 303]
        # And asking for a new code while the channel is full says so, and sends nothing
        resent = ask_for_a_new_code(client, third.headers["location"])
        assert resent.status_code == 200
        assert BUSY in resent.text
        assert "Please ask again in 1 minute." in resent.text
        # And a decoy code page (the number already gets alerts) answers the same
        confirmed = enter_code(client, first.headers["location"], web.sms_to("+447911123401")[0])
        assert confirmed.status_code == 200, confirmed.text
        active = sign_up_by_sms(client, "07911 123401")
        assert active.status_code == 303
        assert BUSY in ask_for_a_new_code(client, active.headers["location"]).text
    assert units(web, before) <= RATE
    assert worker.limiter("sms").usage("sms") <= RATE
    worker.close()


def test_a_confirmation_call_needs_a_free_voice_line_and_holds_it_briefly(
    tmp_path: Path, redis_url: str
) -> None:
    # Given one voice line, taken by an alert call
    redis.Redis.from_url(redis_url).flushdb()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'lines.db'}",
        redis_url=redis_url,
        voice_concurrency=1,
        _env_file=None,  # type: ignore[call-arg]
    )
    voice = RecordingChannel(name="voice")  # type: ignore[arg-type]
    rt = Runtime(settings, channels={"voice": voice})
    lines = rt.concurrency()
    assert lines.acquire("voice", lease_seconds=60, lease_id="delivery-1")
    call = PendingMessage("ab" * 16, "voice", "+447911123456", "en")
    # When a confirmation call is asked for
    started = time.monotonic()
    busy = send_confirmation(rt, call, max_wait=0.5)
    # Then it waits briefly for the line, is not placed, and says to try again later
    assert time.monotonic() - started >= 0.3
    assert (busy.sent, busy.busy_for, voice.sent) == (False, LINE_RETRY, [])
    # And once the alert call has ended, the confirmation call takes the line for a few minutes
    assert lines.release("voice", "delivery-1")
    assert send_confirmation(rt, call, max_wait=0.5).sent
    assert [m.to for m in voice.sent] == ["+447911123456"]
    assert lines.in_use("voice") == 1
    ttl = redis.Redis.from_url(redis_url).pttl("broadcast:concurrency:{voice}:leases") / 1000
    assert 0 < ttl <= CALL_SECONDS + 1
    rt.close()
