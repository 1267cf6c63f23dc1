"""The one small interface every channel implements, and the two kinds of channel error.

A channel only sends. Whether to retry, give up or suppress an address is decided by the delivery
code from the error class and its ``suppress`` flag; no provider SDK type leaks past this module's
subclasses.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from broadcast.errors import BroadcastError
from broadcast.vocabulary import ChannelLiteral


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
        message_key: stable for the delivery (the email Message-ID's left part); empty: random.
    """

    delivery_id: int
    channel: ChannelLiteral
    to: str
    body: str
    subject: str | None = None
    html: str | None = None
    unsubscribe_url: str | None = None
    units: int = 1
    message_key: str = ""


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


Finished = tuple[OutboundMessage, "SendResult | ChannelError"]


class LaneFeed(Protocol):
    """Hands messages to a channel's lanes one at a time, just before each request.

    The delivery code takes capacity and claims the delivery inside ``advance``, so a message is
    claimed only when a lane (a connection, a request slot) is free to send it at once: a crash
    leaves at most as many deliveries in doubt as there were requests in flight.
    """

    size: int  # messages the feed may hand out at most (lanes beyond it are not started)

    def advance(self, finished: Finished | None) -> OutboundMessage | None:
        """Record the lane's last result (if any); the next message to send now, or None."""
        ...

    def stop(self) -> None:
        """Hand out nothing more (a lane failed)."""
        ...


class ListFeed:
    """Feeds a fixed list and keeps each result in input order (``Channel.send_many``)."""

    def __init__(self, messages: Sequence[OutboundMessage]) -> None:
        self.size = len(messages)
        self._messages = list(messages)
        self._position = 0
        self._lock = threading.Lock()
        self._index = {id(m): i for i, m in enumerate(self._messages)}
        self.results: list[SendResult | ChannelError | None] = [None] * len(messages)

    def advance(self, finished: Finished | None) -> OutboundMessage | None:
        with self._lock:
            if finished is not None:
                self.results[self._index[id(finished[0])]] = finished[1]
            if self._position >= len(self._messages):
                return None
            self._position += 1
            return self._messages[self._position - 1]

    def stop(self) -> None:
        with self._lock:
            self._position = len(self._messages)


@dataclass(frozen=True, slots=True)
class SentQuery:
    """Did the provider take this message? Asked of a delivery left in doubt.

    Parameters:
        message: the message as it would have been sent (same address and text).
        since: when the delivery was claimed; the provider's record is not older.
    """

    message: OutboundMessage
    since: datetime


class Channel(abc.ABC):
    """Sends messages for one channel. Implementations are thread-safe: ``send`` is called from
    worker threads concurrently, so any connection pool lives inside the instance."""

    name: ChannelLiteral
    # Requests one instance has in flight at once (per process); ``run_lanes`` keeps to it.
    lanes: int = 1

    @abc.abstractmethod
    def send(self, message: OutboundMessage) -> SendResult:
        """Send one message; raise TransientChannelError or PermanentChannelError on failure."""

    def run_lanes(self, feed: LaneFeed) -> None:
        """Send what ``feed`` hands out until it has nothing more, on up to ``lanes`` lanes.

        The default is one lane in the calling thread; providers override it to overlap requests.
        """
        finished: Finished | None = None
        while (message := feed.advance(finished)) is not None:
            finished = (message, self.send_or_error(message))

    def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | ChannelError]:
        """Send several messages; one result or error per message, in input order."""
        feed = ListFeed(messages)
        self.run_lanes(feed)
        return feed.results  # type: ignore[return-value]

    def send_or_error(self, message: OutboundMessage) -> SendResult | ChannelError:
        try:
            return self.send(message)
        except ChannelError as exc:
            return exc

    def warm(self) -> None:  # noqa: B027 - a no-op hook for channels with nothing to open
        """Connect and authenticate ahead of the first message, so that the first request after
        a grant of capacity is not held up by a slow start (docs/capacity.md)."""

    def find_sent(self, queries: Sequence[SentQuery]) -> list[str | None] | None:
        """The provider's id for each message it holds, None for each it has no record of; or
        None overall when this provider cannot be asked (SMTP). Raises TransientChannelError
        when the provider cannot be reached now."""
        return None

    def close(self) -> None:  # noqa: B027 - a no-op hook, like Dramatiq's middleware hooks
        """Release connections and threads; the channel must not be used afterwards."""

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
