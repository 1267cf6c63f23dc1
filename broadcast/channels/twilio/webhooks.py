"""Twilio's side of the webhooks: checking a request's signature and building the TwiML replies.

The web routes decide what a request means; this module keeps the Twilio SDK behind the channel
room, so nothing outside `broadcast/channels/twilio/` imports `twilio`.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from broadcast.channels.twilio.voice import LANGUAGE

TWIML_MEDIA_TYPE = "application/xml"


def is_signed(auth_token: str, url: str, params: Mapping[str, object], signature: str) -> bool:
    """True when `signature` (the `X-Twilio-Signature` header) is Twilio's signature of `url`
    (the full public URL, query included) and the form `params`, under `auth_token`.

    `params` may be a multi-dict (Starlette's `FormData`): every value of a repeated field is
    signed, as Twilio does."""
    return bool(RequestValidator(auth_token).validate(url, params, signature))


def sms_reply(text: str) -> str:
    """The TwiML answering an inbound SMS with one message."""
    response = MessagingResponse()
    response.message(text)
    return str(response)


def spoken_reply(text: str) -> str:
    """The TwiML answering a keypress during a call: say `text`, then hang up."""
    response = VoiceResponse()
    response.say(text, language=LANGUAGE)
    response.hangup()
    return str(response)
