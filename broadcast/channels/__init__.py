"""Channels: one small interface (``Channel``) in front of Twilio SMS, Twilio voice and SMTP
email, with an outbox stand-in for any channel whose provider is not configured."""

from __future__ import annotations

import logging

from broadcast.channels.base import (
    Channel,
    ChannelError,
    LaneFeed,
    ListFeed,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    SentQuery,
    TransientChannelError,
)
from broadcast.channels.outbox import OutboxChannel
from broadcast.settings import Settings
from broadcast.vocabulary import CHANNELS, ChannelLiteral

__all__ = [
    "Channel",
    "ChannelError",
    "LaneFeed",
    "ListFeed",
    "OutboundMessage",
    "OutboxChannel",
    "PermanentChannelError",
    "SendResult",
    "SentQuery",
    "TransientChannelError",
    "build_channel",
]

logger = logging.getLogger(__name__)


def build_channel(name: ChannelLiteral, settings: Settings) -> Channel:
    """The real provider channel when its settings are present, else the outbox (with a loud
    warning, because nothing will reach anyone)."""
    if name == "sms" and settings.sms_configured:
        from broadcast.channels.twilio.sms import TwilioSmsChannel, TwilioSmsConfig

        return TwilioSmsChannel(TwilioSmsConfig.from_settings(settings))
    if name == "voice" and settings.voice_configured:
        from broadcast.channels.twilio.voice import TwilioVoiceChannel, TwilioVoiceConfig

        return TwilioVoiceChannel(TwilioVoiceConfig.from_settings(settings))
    if name == "email" and settings.email_configured:
        from broadcast.channels.email.channel import SmtpEmailChannel
        from broadcast.channels.email.config import SmtpConfig

        return SmtpEmailChannel(SmtpConfig.from_settings(settings))
    if name not in CHANNELS:
        raise ValueError(f"unknown channel {name!r}; expected one of {', '.join(CHANNELS)}")
    outbox = OutboxChannel.from_settings(name, settings)
    logger.warning(
        "%s is NOT configured: messages are written to the outbox at %s and NOT sent to anyone",
        name.upper(),
        outbox.location.resolve(),
    )
    return outbox
