"""Sending double opt-in messages (the `confirm-subscription` template) through the channels."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

from broadcast.channels import Channel, ChannelError, OutboundMessage, build_channel
from broadcast.messages.render import RecipientContext, load_template
from broadcast.registrants.links import LinkSigner
from broadcast.settings import Settings
from broadcast.web.sms_caps import SmsCaps

logger = logging.getLogger(__name__)
TEMPLATE = "confirm-subscription"
# Confirmation messages have no delivery record; this id only names outbox files and
# Message-IDs, so it just has to be unique (microseconds since the epoch, then counting up).
_ids = itertools.count(time.time_ns() // 1000)


@dataclass(frozen=True)
class PendingMessage:
    """One confirmation to send once the database transaction has committed."""

    public_id: str
    channel: str
    to: str
    language: str
    code: str | None = None
    confirm_token: str | None = None
    opted_out: bool = False  # the address had opted out: the message says what confirming does


class Confirmations:
    """Builds each channel on first use and keeps it (the SMTP pool, the Twilio session)."""

    def __init__(self, settings: Settings, signer: LinkSigner) -> None:
        self.settings = settings
        self.signer = signer
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()
        self.caps = SmsCaps(settings)

    def _channel(self, name: str) -> Channel:
        with self._lock:
            if name not in self._channels:
                self._channels[name] = build_channel(name, self.settings)  # type: ignore[arg-type]
            return self._channels[name]

    def send(self, message: PendingMessage) -> bool:
        """Render and send one confirmation; False (logged, no personal data) if it failed or
        a confirmation SMS cap was reached (sms_caps.py)."""
        settings, signer = self.settings, self.signer
        if message.channel == "sms" and not self.caps.allow(message.to):
            return False
        recipient = RecipientContext(
            manage_url=signer.url(message.public_id, "manage"),
            unsubscribe_url=signer.url(message.public_id, "unsubscribe", message.channel),
            # No name: nobody has proved they hold this address yet, so a confirmation carries
            # none of the requester's own text under the force's name.
            name="",
            language=message.language,
            confirm_url=(
                f"{settings.public_url.rstrip('/')}/confirm/{message.confirm_token}"
                if message.confirm_token
                else None
            ),
            confirm_code=message.code,
        )
        template = load_template(TEMPLATE, settings.templates_dir)
        rendered = template.render(
            message.channel,
            {"opted_out": "yes" if message.opted_out else ""},
            recipient,
            force_name=settings.force_name,
            public_url=settings.public_url,
            max_segments=settings.sms_max_segments,
        )
        outbound = OutboundMessage(
            delivery_id=next(_ids),
            channel=message.channel,  # type: ignore[arg-type]
            to=message.to,
            body=rendered.body,
            subject=rendered.subject,
            html=rendered.html,
            unsubscribe_url=recipient.unsubscribe_url,
            units=rendered.sms.segments if rendered.sms else 1,
        )
        try:
            self._channel(message.channel).send(outbound)
        except ChannelError as exc:
            logger.warning("confirmation by %s not sent: %s", message.channel, exc)
            return False
        return True

    def send_all(self, messages: list[PendingMessage]) -> None:
        for message in messages:
            self.send(message)

    def close(self) -> None:
        with self._lock:
            for channel in self._channels.values():
                channel.close()
            self._channels.clear()
