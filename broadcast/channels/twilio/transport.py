"""A lean HTTP transport for the official Twilio client: urllib3 directly, without `requests`.

The official client takes any `twilio.http.HttpClient`; everything Twilio-specific (URLs,
parameter names and serialisation, auth, response parsing, `TwilioRestException`) stays in the
client. Its stock transport goes through a `requests.Session`, whose per-request preparation
(hooks, cookies, settings merging, URL and body re-encoding) was about 60% of the CPU of one SMS
when profiled (docs/performance.md). Transport failures are raised as the `requests` exceptions
the stock transport raises, so `call_twilio` classifies both the same way.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import urlencode

import requests
import urllib3
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

logger = logging.getLogger("twilio.http_client")


class LeanHttpClient(HttpClient):
    """Keep-alive connection pool of `pool_size`; no retries (the delivery code decides)."""

    def __init__(self, *, timeout: float, pool_size: int, ca_bundle: str | None = None) -> None:
        super().__init__(logger, False, timeout)
        tls: dict[str, Any] = {"ca_certs": ca_bundle} if ca_bundle else {}
        self.pool = urllib3.PoolManager(
            num_pools=2, maxsize=pool_size, block=False, retries=False, **tls
        )
        # As requests' HTTPAdapter(max_retries=0): never resend, and raise read errors as is.
        self._retries = urllib3.Retry(0, read=False, redirect=False)
        self.last_exchange: tuple[str, str, Response] | None = None

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        headers = dict(headers or {})
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, doseq=True)
        body = None
        if data:
            body = urlencode(data, doseq=True)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        try:
            response = self.pool.request(
                method.upper(),
                url,
                body=body,
                headers=headers,
                timeout=timeout or self.timeout,
                retries=self._retries,
                redirect=allow_redirects,
            )
        except MaxRetryError as exc:
            raise _as_requests_error(exc.reason) from None
        except (ReadTimeoutError, ProtocolError, SSLError, ConnectTimeoutError) as exc:
            raise _as_requests_error(exc) from None
        answer = Response(response.status, response.data.decode("utf-8"), response.headers)
        # What `doctor` reports when a probe fails (the query string and credentials left out).
        self.last_exchange = (method.upper(), url.split("?")[0], answer)
        return answer

    def close(self) -> None:
        self.pool.clear()


def _as_requests_error(exc: BaseException | None) -> requests.RequestException:
    """The exception requests would raise for this urllib3 failure."""
    if isinstance(exc, NewConnectionError):  # a subclass of ConnectTimeoutError in urllib3
        return requests.ConnectionError(repr(exc))  # refused: call_twilio sees NewConnectionError
    if isinstance(exc, ConnectTimeoutError):
        return requests.ConnectTimeout(repr(exc))
    if isinstance(exc, ReadTimeoutError):
        return requests.ReadTimeout(repr(exc))
    if isinstance(exc, SSLError):
        return requests.exceptions.SSLError(repr(exc))
    return requests.ConnectionError(f"connection dropped: {exc!r}")
