"""SMS through Twilio's Messages API with the official client."""

from __future__ import annotations

import re
from dataclasses import dataclass

from broadcast.channels.base import OutboundMessage, SendResult
from broadcast.channels.twilio.client import (
    DEFAULT_TIMEOUT,
    PooledTwilioChannel,
    call_twilio,
)
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings

MESSAGING_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
LINK = re.compile(r"https?://\S+")


def _without_links(text: str) -> str:
    return " ".join(LINK.sub("", text).split())


@dataclass(frozen=True)
class TwilioSmsConfig:
    """Everything the SMS channel needs, so nothing is read from module globals.

    ``sender`` is an E.164 number, an alphanumeric sender id, or a Messaging Service SID (MG...).
    """

    account_sid: str
    auth_token: str
    sender: str
    status_callback: str | None
    api_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = 8

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioSmsConfig:
        if not settings.sms_configured:
            raise ConfigurationError(
                "SMS needs BROADCAST_TWILIO_ACCOUNT_SID, BROADCAST_TWILIO_AUTH_TOKEN "
                "and BROADCAST_SMS_FROM"
            )
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.sms_from
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            sender=settings.sms_from,
            status_callback=settings.public_url.rstrip("/") + "/twilio/sms/status",
            api_url=settings.twilio_api_url,
        )

    @property
    def uses_messaging_service(self) -> bool:
        return bool(MESSAGING_SERVICE_SID.match(self.sender))


class TwilioSmsChannel(PooledTwilioChannel):
    """Sends each SMS as one Messages API request; Twilio splits it into segments."""

    name = "sms"

    def __init__(self, config: TwilioSmsConfig) -> None:
        super().__init__(config)
        self.config: TwilioSmsConfig = config

    def send(self, message: OutboundMessage) -> SendResult:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.config.sender}
            if self.config.uses_messaging_service
            else {"from_": self.config.sender}
        )
        created = call_twilio(
            lambda: self.client.messages.create(
                to=message.to,
                body=message.body,
                status_callback=self.config.status_callback,
                **sender,
            )
        )
        return SendResult(provider_id=created.sid, provider_status=str(created.status))  # type: ignore[attr-defined]

    def _list_recent(self, to: str | None, *, page_size: int) -> object:
        if to is None:
            return self.client.messages.list(limit=page_size, page_size=page_size)
        return self.client.messages.list(to=to, limit=page_size, page_size=page_size)

    def _matches(self, item: object, message: OutboundMessage) -> bool:
        # Another alert may have texted the same number meanwhile: the text tells them apart.
        # Links are left out: their signed tokens carry the time they were made.
        body = getattr(item, "body", None) or ""
        return _without_links(message.body) in _without_links(body)
