"""Voice calls through Twilio's Calls API with inline TwiML: the script said twice in en-GB,
inside a Gather so pressing 9 unsubscribes from voice alerts."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from broadcast.channels.base import OutboundMessage, SendResult
from broadcast.channels.twilio.client import (
    DEFAULT_TIMEOUT,
    PooledTwilioChannel,
    call_twilio,
)
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings

LANGUAGE = "en-GB"
UNSUBSCRIBE_DIGIT = "9"


# Every recipient of an alert usually hears the same script: build its TwiML (an ElementTree
# round trip, ~7% of a worker's CPU on voice) once, not once per call.
@functools.lru_cache(maxsize=64)
def voice_twiml(script: str, gather_url: str) -> str:
    """The TwiML for one alert call; pure, so the outbox can record exactly what would be sent.

    The script is said twice (people miss the start of a call) inside a one-digit Gather whose
    action receives the key pressed; the web app treats 9 as "unsubscribe me from voice".
    """
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url, method="POST")
    gather.say(script, language=LANGUAGE)
    gather.pause(length=1)
    gather.say(script, language=LANGUAGE)
    return str(response)


@dataclass(frozen=True)
class TwilioVoiceConfig:
    """Everything the voice channel needs, built once from Settings."""

    account_sid: str
    auth_token: str
    caller_id: str
    status_callback: str | None
    gather_url: str
    api_url: str | None = None
    machine_detection: bool = False
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = 4

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioVoiceConfig:
        if not settings.voice_configured:
            raise ConfigurationError(
                "voice needs BROADCAST_TWILIO_ACCOUNT_SID, BROADCAST_TWILIO_AUTH_TOKEN "
                "and BROADCAST_VOICE_FROM"
            )
        assert settings.twilio_account_sid and settings.twilio_auth_token and settings.voice_from
        base = settings.public_url.rstrip("/")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            caller_id=settings.voice_from,
            status_callback=base + "/twilio/voice/status",
            gather_url=base + "/twilio/voice/gather",
            api_url=settings.twilio_api_url,
            machine_detection=settings.voice_machine_detection,
        )


class TwilioVoiceChannel(PooledTwilioChannel):
    """Places one call per message with the TwiML inline, so no web round trip is needed."""

    name = "voice"

    def __init__(self, config: TwilioVoiceConfig) -> None:
        super().__init__(config)
        self.config: TwilioVoiceConfig = config

    def send(self, message: OutboundMessage) -> SendResult:
        extra: dict[str, str] = {}
        if self.config.machine_detection:
            extra["machine_detection"] = "Enable"
        twiml = voice_twiml(message.body, self.config.gather_url)
        created = call_twilio(
            lambda: self.client.calls.create(
                to=message.to,
                from_=self.config.caller_id,
                twiml=twiml,
                status_callback=self.config.status_callback,
                status_callback_event=["initiated", "answered", "completed"],
                **extra,
            )
        )
        return SendResult(provider_id=created.sid, provider_status=str(created.status))  # type: ignore[attr-defined]

    def _list_recent(self, to: str | None, *, page_size: int) -> object:
        # No DateCreated filter on Calls, and StartTime is empty until a call is dialled: the
        # newest calls to the number, filtered by creation time by the caller.
        if to is None:
            return self.client.calls.list(limit=page_size, page_size=page_size)
        return self.client.calls.list(to=to, limit=page_size, page_size=page_size)
