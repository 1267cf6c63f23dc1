"""The one small interface every channel implements, and the two kinds of channel error.

A channel only sends. Whether to retry, give up or suppress an address is decided by the delivery
code from the error class and its ``suppress`` flag; no provider SDK type leaks past this module's
subclasses.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from broadcast.errors import BroadcastError

ChannelName = Literal["sms", "email", "voice"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One rendered message for one recipient on one channel.

    Parameters:
        delivery_id: the delivery record this message belongs to (names outbox files, Message-IDs).
        channel: "sms", "email" or "voice".
        to: an E.164 number (sms, voice) or an email address.
        body: the SMS text, the plain-text email part, or the voice script.
        subject: the email subject (email only).
        html: the HTML email part (email only, optional).
        unsubscribe_url: the recipient's one-click unsubscribe link (email List-Unsubscribe).
        units: capacity units this message uses (SMS segments; 1 otherwise).
    """

    delivery_id: int
    channel: ChannelName
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    units: int = 1


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the provider said when it accepted a message.

    Parameters:
        provider_id: the Twilio SID (SM.../CA...) or the SMTP Message-ID.
        provider_status: the provider's own status word ("queued", "250", "outbox"...).
    """

    provider_id: str
    provider_status: str


class ChannelError(BroadcastError):
    """A provider did not accept a message. ``code`` is the provider's code as text, ``reason`` a
    short operator-facing explanation that never contains personal data."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(f"{reason} (code {code})" if code else reason)
        self.reason = reason
        self.code = code
        self.suppress = False


class TransientChannelError(ChannelError):
    """Try again later: timeouts, refused connections, HTTP 5xx, rate limits, SMTP 4xx.

    ``maybe_sent`` is True when the request may have reached the provider before the failure
    (a read timeout or a connection dropped mid-request): a blind retry could send twice, so the
    delivery code may want to check with the provider or flag the delivery as in doubt.
    """

    def __init__(self, reason: str, *, code: str | None = None, maybe_sent: bool = False) -> None:
        super().__init__(reason, code=code)
        self.maybe_sent = maybe_sent


class PermanentChannelError(ChannelError):
    """Never retry this message. With ``suppress`` the address itself must not be used again on
    this channel (the recipient sent STOP, or the mailbox bounced)."""

    def __init__(self, reason: str, *, code: str | None = None, suppress: bool = False) -> None:
        super().__init__(reason, code=code)
        self.suppress = suppress


class Channel(abc.ABC):
    """Sends messages for one channel. Implementations are thread-safe: ``send`` is called from
    worker threads concurrently, so any connection pool lives inside the instance."""

    name: ChannelName

    @abc.abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; raise TransientChannelError or PermanentChannelError on failure."""

    def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Send several messages; one result or error per message, in input order.

        The default sends one after another; providers override it to overlap requests.
        """
        results: list[SendResult | ChannelError] = []
        for message in messages:
            try:
                results.append(self.send(message))
            except ChannelError as exc:
                results.append(exc)
        return results

    def close(self) -> None:  # noqa: B027 - a no-op hook, like Dramatiq's middleware hooks
        """Release connections and threads; the channel must not be used afterwards."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
