"""The webhook replay guard under real concurrency: 20 distinct signed inbound SMS, each sent 20
times at once from threads to a real uvicorn server, are handled exactly 20 times (the guard
claims a request atomically before handling it), with the in-process guard on SQLite and
PostgreSQL and with Redis."""

from __future__ import annotations

import ssl
import threading
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.support.twilio_server import AUTH_TOKEN
from tests.web.conftest import Web
from tests.web.test_twilio_webhooks import PUBLIC_URL, sms

PATH = "/twilio/sms/inbound"
DISTINCT, COPIES = 20, 20
# One TLS context for all 400 clients: httpx builds (and loads the CA bundle into) a new one per
# client otherwise, which took ~25 s of the ~27 s per case before the barrier even released.
# The URLs are plain http; the context is never used, only not rebuilt.
TLS = ssl.create_default_context()


def fire_at_once(web: Web) -> Counter[int]:
    """Send every copy of every request from its own thread, all released by one barrier."""
    requests = []
    for i in range(DISTINCT):
        params = sms("HELP", sid=f"SM{i:032d}")
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + PATH, params)
        requests += [(params, signature)] * COPIES
    barrier = threading.Barrier(len(requests))
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def send(params: dict[str, str], signature: str) -> None:
        with httpx.Client(base_url=web.url, timeout=60, verify=TLS) as client:
            barrier.wait()
            response = client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})
        with lock:
            statuses[response.status_code] += 1

    threads = [threading.Thread(target=send, args=r) for r in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return statuses


def test_each_signed_request_is_handled_once_under_concurrency(
    make_web: Callable[..., Web], database_url: str
) -> None:
    # Given the app with the in-process replay guard, on SQLite or PostgreSQL
    web = make_web(public_url=PUBLIC_URL, database_url=database_url)
    # When 20 distinct signed requests arrive 20 times each, all at once
    statuses = fire_at_once(web)
    # Then exactly one copy of each was handled and every other copy was refused as a replay
    assert statuses == Counter({200: DISTINCT, 403: DISTINCT * (COPIES - 1)})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_each_signed_request_is_handled_once_with_redis(
    make_web: Callable[..., Web], database_url: str, redis_url: str
) -> None:
    web = make_web(public_url=PUBLIC_URL, database_url=database_url, redis_url=redis_url)
    statuses = fire_at_once(web)
    assert statuses == Counter({200: DISTINCT, 403: DISTINCT * (COPIES - 1)})
