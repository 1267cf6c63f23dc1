"""Reachability and credential checks for the providers that send nothing (for `doctor`)."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit, urlunsplit

from broadcast.channels.email.config import SmtpConfig
from broadcast.channels.email.pool import open_connection
from broadcast.channels.twilio.client import make_client
from broadcast.errors import BroadcastError
from broadcast.settings import Settings


class ProbeFailed(BroadcastError):
    """A provider probe failed; the message says what the provider answered, and where."""


def probe_twilio(settings: Settings, *, timeout: float = 5.0) -> str:
    """List one message of the account: proves the API answers and the credentials work.

    Raises a ChannelError (as sending would) when it does not.
    """
    assert settings.twilio_account_sid and settings.twilio_auth_token
    client = make_client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        api_url=settings.twilio_api_url,
        timeout=timeout,
        pool_size=1,
    )
    try:
        client.api.v2010.account.messages.list(limit=1, page_size=1)
    except Exception as exc:  # noqa: BLE001 - every failure is reported, with what Twilio said
        raise ProbeFailed(twilio_failure(client, exc, settings)) from None
    finally:
        http_client = client.http_client
        closer = getattr(http_client, "close", None) or getattr(
            getattr(http_client, "session", None), "close", None
        )
        if closer is not None:
            closer()
    where = settings.twilio_api_url or "https://api.twilio.com"
    return f"Twilio API at {where} accepted the credentials"


def twilio_failure(client: object, exc: Exception, settings: Settings) -> str:
    """One line: HTTP status, Twilio error code and message, the method and URL (never the
    credentials or query string), or why no answer came."""
    http = getattr(client, "http_client", None)
    exchange = getattr(http, "last_exchange", None)
    response = exchange[2] if exchange else getattr(http, "_test_only_last_response", None)
    request = getattr(http, "_test_only_last_request", None)
    method, url = (exchange[0], exchange[1]) if exchange else ("GET", "")
    uri = getattr(exc, "uri", None)
    if uri:
        url = _joined(settings, str(uri))
    if not url and request is not None:
        method, url = request.method, str(request.url)
    url = _without_secrets(url or (settings.twilio_api_url or "https://api.twilio.com"))
    status = getattr(exc, "status", None) or getattr(response, "status_code", None)
    if status is None:
        return f"no answer from Twilio for {method} {url} ({type(exc).__name__})"
    code, message = _twilio_code(exc, response)
    text = f"Twilio answered HTTP {status}"
    if code is not None:
        text += f", error {code}"
    if message:
        text += f" ({message[:160]})"
    return f"{text} for {method} {url}"


def _joined(settings: Settings, uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return uri
    return (settings.twilio_api_url or "https://api.twilio.com").rstrip("/") + uri


def _without_secrets(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def _twilio_code(exc: Exception, response: object) -> tuple[object, str]:
    code, message = getattr(exc, "code", None), str(getattr(exc, "msg", "") or "")
    body = getattr(response, "text", None)
    if body:
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if isinstance(answer, dict):
            code = answer.get("code", code)
            message = str(answer.get("message") or message)
        elif not message:
            message = "the answer was not Twilio's JSON: check BROADCAST_TWILIO_API_URL"
    if code == getattr(exc, "status", object()):
        code = None  # the SDK repeats the HTTP status as the code when the body had none
    message = message.replace("\n", " ").splitlines()[0] if message else ""
    return code, message


def probe_smtp(settings: Settings, *, timeout: float = 5.0) -> str:
    """Connect, negotiate TLS as configured, log in, NOOP and QUIT: no message is sent."""
    config = SmtpConfig.from_settings(settings)

    async def probe() -> None:
        smtp = await open_connection(config, timeout)
        try:
            await smtp.noop()
        finally:
            await smtp.quit()

    asyncio.run(probe())
    login = " and logged in" if config.username else ""
    return f"SMTP server {config.host}:{config.port} answered ({config.tls}){login}"
