"""Reachability and credential checks for the providers that send nothing (for `doctor`)."""

from __future__ import annotations

import asyncio

from broadcast.channels.smtp_email import SmtpConfig
from broadcast.channels.smtp_pool import open_connection
from broadcast.channels.twilio_client import call_twilio, make_client
from broadcast.settings import Settings


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
        call_twilio(lambda: client.api.v2010.account.messages.list(limit=1, page_size=1))
    finally:
        http_client = client.http_client
        closer = getattr(http_client, "close", None) or getattr(
            getattr(http_client, "session", None), "close", None
        )
        if closer is not None:
            closer()
    where = settings.twilio_api_url or "https://api.twilio.com"
    return f"Twilio API at {where} accepted the credentials"


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
