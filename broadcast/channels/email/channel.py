"""Email over SMTP with aiosmtplib: a pool of reused connections driven by one event loop that
runs in a background thread, so sync worker threads can send without a connection per message."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aiosmtplib

from broadcast.channels.base import (
    Channel,
    ChannelError,
    Finished,
    LaneFeed,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)
from broadcast.channels.email.config import SmtpConfig
from broadcast.channels.email.message import envelope_sender
from broadcast.channels.email.pool import SmtpPool
from broadcast.channels.email.wire import EmailWriter

T = TypeVar("T")


class SmtpEmailChannel(Channel):
    """Sends email over a bounded pool of SMTP connections; ``send_many`` pipelines over it."""

    name = "email"

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="smtp-email-loop", daemon=True
        )
        self._thread.start()
        self._pool = SmtpPool(config)
        self._writer = EmailWriter(config.sender)  # bytes directly: email.message was the cost
        self._envelope_sender = envelope_sender(config.sender)
        self._closed = False

    def send(self, message: OutboundMessage) -> SendResult:
        return self._submit(self._send(message)).result()

    @property
    def lanes(self) -> int:  # type: ignore[override]
        return self.config.pool_size

    def run_lanes(self, feed: LaneFeed) -> None:
        # One coroutine per pooled connection, each taking the next message as it frees up:
        # a cross-thread future and a pool wait per message cost more than the SMTP exchange.
        self._submit(self._run_lanes(feed)).result()

    async def _run_lanes(self, feed: LaneFeed) -> None:
        lanes = min(self.config.pool_size, feed.size)
        outcomes = await asyncio.gather(
            *(self._lane(feed) for _ in range(lanes)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _lane(self, feed: LaneFeed) -> None:
        """Hold a connection first, then ask the feed for a message: every claimed message goes
        out at once (claims waiting for a connection would be lost in a crash)."""
        finished: Finished | None = None
        try:
            while True:
                try:
                    async with self._pool.connection() as smtp:
                        while True:
                            message = await asyncio.to_thread(feed.advance, finished)
                            finished = None
                            if message is None:
                                return
                            try:
                                finished = (message, await self._send_on(smtp, message))
                            except ChannelError as exc:
                                finished = (message, exc)
                            if not smtp.is_connected:
                                break  # a fresh connection for the next message
                except Exception as exc:
                    # Only opening a connection gets here (send errors are results above).
                    error = smtp_error(exc)
                    if not isinstance(error, ChannelError):
                        raise
                    # No connection: the next message fails with why, and is retried later.
                    message = await asyncio.to_thread(feed.advance, finished)
                    finished = None if message is None else (message, error)
                    if message is None:
                        return
        except BaseException:
            feed.stop()
            raise

    def warm(self) -> None:
        # Open (and log in on) one connection before the worker takes capacity.
        async def connect() -> None:
            async with self._pool.connection():
                pass

        with contextlib.suppress(Exception):
            self._submit(connect()).result(timeout=self.config.timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._submit(self._pool.close()).result(timeout=self.config.timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        if self._closed and self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the email channel is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _send(self, message: OutboundMessage) -> SendResult:
        try:
            async with self._pool.connection() as smtp:
                return await self._send_on(smtp, message)
        except ChannelError:
            raise
        except Exception as exc:
            raise smtp_error(exc) from None

    async def _send_on(self, smtp: aiosmtplib.SMTP, message: OutboundMessage) -> SendResult:
        email, message_id = self._writer.write(message)
        try:
            await smtp.sendmail(self._envelope_sender, [message.to], email)
        except BaseException as exc:
            self._pool.discard_if_broken(smtp, exc)
            error = smtp_error(exc)
            if isinstance(error, ChannelError):
                raise error from None
            raise
        return SendResult(provider_id=message_id, provider_status="accepted")


def smtp_error(exc: BaseException) -> ChannelError | BaseException:
    """Map an aiosmtplib exception to a channel error (other exceptions pass through)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPRecipientRefused):
        if exc.code >= 500:
            return PermanentChannelError(
                "the recipient address bounced", code=str(exc.code), suppress=True
            )
        return TransientChannelError("the mail server deferred the recipient", code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
        return TransientChannelError("the mail server refused the session", code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError | aiosmtplib.SMTPSenderRefused):
        # Our login or sender is at fault, not the recipient: retry so a settings fix rescues it.
        return TransientChannelError(
            "the mail server refused our login or sender; check BROADCAST_SMTP_*/EMAIL_FROM",
            code=str(exc.code),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        if exc.code >= 500:
            return PermanentChannelError("the mail server rejected the message", code=str(exc.code))
        return TransientChannelError("the mail server deferred the message", code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPConnectError | ConnectionRefusedError):
        return TransientChannelError("cannot connect to the mail server")
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        # The message may have been accepted just before the reply was lost.
        return TransientChannelError("the mail server did not answer in time", maybe_sent=True)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return TransientChannelError("the mail server hung up", maybe_sent=True)
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        return TransientChannelError(f"cannot talk to the mail server ({type(exc).__name__})")
    return exc
