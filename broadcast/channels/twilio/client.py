"""What the SMS and voice channels share: a pooled official Twilio client pointed at any base URL,
exception mapping, and ``send_many`` over a small thread pool."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http import HttpClient
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from broadcast.channels.base import (
    Channel,
    ChannelError,
    Finished,
    LaneFeed,
    OutboundMessage,
    SentQuery,
    TransientChannelError,
)
from broadcast.channels.twilio.errors import twilio_error
from broadcast.channels.twilio.transport import LeanHttpClient
from broadcast.clock import aware

DEFAULT_TIMEOUT = 10.0
# Records are looked up from a little before the claim, for clocks that disagree.
CLOCK_SKEW = timedelta(seconds=5)
# A number gets few messages per alert; the newest 20 cover any claim still in doubt.
LOOKUP_PAGE = 20


def make_client(
    account_sid: str, auth_token: str, *, api_url: str | None, timeout: float, pool_size: int
) -> Client:
    """An official Twilio client with one pooled keep-alive transport, optionally pointed at a
    Twilio-compatible server instead of https://api.twilio.com."""
    proxies = requests.utils.get_environ_proxies(api_url or "https://api.twilio.com")
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    http_client: HttpClient
    if not proxies:
        # urllib3 directly: the requests layer was most of the CPU per SMS (twilio_transport).
        http_client = LeanHttpClient(timeout=timeout, pool_size=pool_size, ca_bundle=ca_bundle)
    else:
        http_client = requests_client(proxies, ca_bundle, timeout, pool_size)
    client = Client(account_sid, auth_token, http_client=http_client)
    if api_url:
        # The Api domain builds every v2010 URL from base_url; swapping it redirects the client.
        client.api.base_url = api_url.rstrip("/")
    return client


def requests_client(
    proxies: dict[str, str], ca_bundle: str | None, timeout: float, pool_size: int
) -> TwilioHttpClient:
    """The stock requests transport, kept for proxies (which urllib3 would need set up apart)."""
    http_client = TwilioHttpClient(pool_connections=True, timeout=timeout)
    assert http_client.session is not None
    # The stock adapter pools 10 connections and only for https; size it to our thread pool.
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    http_client.session.mount("https://", adapter)
    http_client.session.mount("http://", adapter)
    # requests re-reads proxy variables from os.environ on every request (a quarter of the CPU
    # per SMS when measured); read proxies and the CA bundle once here instead.
    http_client.session.trust_env = False
    http_client.proxy = proxies
    http_client.session.verify = ca_bundle or True
    return http_client


def call_twilio(create: Callable[[], object]) -> object:
    """Run one client call, turning SDK and transport exceptions into channel errors."""
    try:
        return create()
    except TwilioRestException as exc:
        raise twilio_error(_int_or_none(exc.code), exc.status) from None
    except TwilioServiceException as exc:
        raise twilio_error(_int_or_none(exc.code), exc.status) from None
    except (requests.ConnectTimeout, requests.exceptions.SSLError) as exc:
        raise TransientChannelError(f"cannot connect to Twilio ({type(exc).__name__})") from None
    except requests.Timeout:
        raise TransientChannelError("Twilio did not answer in time", maybe_sent=True) from None
    except requests.ConnectionError as exc:
        # Refused before sending is safe to retry; a dropped connection may have been accepted.
        refused = "refused" in str(exc).lower() or "NewConnectionError" in repr(exc)
        raise TransientChannelError(
            "cannot connect to Twilio" if refused else "connection to Twilio dropped",
            maybe_sent=not refused,
        ) from None
    except (requests.RequestException, TwilioException) as exc:
        raise TransientChannelError(f"Twilio request failed ({type(exc).__name__})") from None


def wait_for_lanes(futures: Sequence[Future[None]]) -> None:
    """Wait for every lane, then raise the first lane's exception, if any."""
    errors = [f.exception() for f in futures]
    for error in errors:
        if error is not None:
            raise error


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class PooledTwilioChannel(Channel):
    """Base for Twilio channels: one client per instance and a lazily started thread pool."""

    def __init__(self, config) -> None:  # type: ignore[no-untyped-def]
        """`config`: a TwilioSmsConfig or TwilioVoiceConfig (credentials, API URL, timeout,
        concurrency)."""
        self.config = config
        self.client = make_client(
            config.account_sid,
            config.auth_token,
            api_url=config.api_url,
            timeout=config.timeout,
            pool_size=config.concurrency,
        )
        self._concurrency = max(1, config.concurrency)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def lanes(self) -> int:  # type: ignore[override]
        return self._concurrency

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self._concurrency, thread_name_prefix=f"twilio-{self.name}"
                )
            return self._executor

    def run_lanes(self, feed: LaneFeed) -> None:
        if feed.size <= 1:
            super().run_lanes(feed)
            return
        # One task per lane rather than per message: each submit costs a lock dance in the
        # executor. The executor has exactly `lanes` threads shared by every caller in the
        # process, so a lane that runs has a request slot: the feed claims only then.
        lanes = min(self._concurrency, feed.size)
        wait_for_lanes([self._pool().submit(self._lane, feed) for _ in range(lanes)])

    def _lane(self, feed: LaneFeed) -> None:
        finished: Finished | None = None
        try:
            while (message := feed.advance(finished)) is not None:
                finished = (message, self.send_or_error(message))
        except BaseException:
            feed.stop()
            raise

    def warm(self) -> None:
        # One cheap authenticated request opens the pooled connection (TLS and all) before the
        # worker takes capacity; failing here is fine, the first send will say why.
        with contextlib.suppress(ChannelError):
            call_twilio(lambda: self._list_recent(None, page_size=1))

    def find_sent(self, queries: Sequence[SentQuery]) -> list[str | None] | None:
        """Ask Twilio's list for each number, in parallel: a message Twilio accepted but has not
        sent yet has no DateSent, so the list is filtered here by DateCreated (and the body)."""
        if not queries:
            return []
        return list(self._pool().map(self._find_one, queries))

    def _find_one(self, query: SentQuery) -> str | None:
        since = query.since - CLOCK_SKEW
        items = call_twilio(lambda: self._list_recent(query.message.to, page_size=LOOKUP_PAGE))
        for item in items:  # type: ignore[attr-defined]
            created = getattr(item, "date_created", None)
            if created is not None and aware(created) < since:
                continue
            if self._matches(item, query.message):
                return str(item.sid)
        return None

    def _list_recent(self, to: str | None, *, page_size: int) -> object:
        """The newest records to `to` (any number when None), at most `page_size`."""
        raise NotImplementedError

    def _matches(self, item: object, message: OutboundMessage) -> bool:
        """Whether a listed record is this message (the number already matched)."""
        return True

    def close(self) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
        http_client = self.client.http_client
        if isinstance(http_client, LeanHttpClient):
            http_client.close()
        elif (session := getattr(http_client, "session", None)) is not None:
            session.close()
