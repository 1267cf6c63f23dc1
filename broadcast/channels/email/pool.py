"""A bounded pool of open aiosmtplib connections, used only from the channel's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiosmtplib

from broadcast.channels.email.config import SmtpConfig


class SmtpPool:
    """Hands out at most ``pool_size`` logged-in connections; idle ones are reused, ones that
    broke (or that the server closed while idle) are dropped and replaced on demand."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._idle: list[aiosmtplib.SMTP] = []
        self._open = 0
        self._broken: set[int] = set()
        self._condition: asyncio.Condition | None = None
        self.connections_made = 0

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[aiosmtplib.SMTP]:
        smtp = await self._acquire()
        try:
            yield smtp
        finally:
            await self._release(smtp)

    def discard_if_broken(self, smtp: aiosmtplib.SMTP, exc: BaseException) -> None:
        """Mark a connection for dropping unless the error was a plain SMTP reply (after which
        aiosmtplib has already sent RSET and the connection is still good)."""
        plain_reply = isinstance(
            exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused
        )
        if not plain_reply or not smtp.is_connected:
            self._broken.add(id(smtp))

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for smtp in idle:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(smtp.quit(), timeout=2)
            smtp.close()
        self._open -= len(idle)

    def _cond(self) -> asyncio.Condition:
        # Created lazily so it binds to the channel's loop, not the constructing thread's.
        if self._condition is None:
            self._condition = asyncio.Condition()
        return self._condition

    async def _acquire(self) -> aiosmtplib.SMTP:
        condition = self._cond()
        async with condition:
            while True:
                while self._idle:
                    smtp = self._idle.pop()
                    if smtp.is_connected:
                        return smtp
                    self._open -= 1  # the server hung up while it sat idle
                if self._open < self.config.pool_size:
                    self._open += 1
                    break
                await condition.wait()
        try:
            return await self._connect()
        except BaseException:
            async with condition:
                self._open -= 1
                condition.notify()
            raise

    async def _release(self, smtp: aiosmtplib.SMTP) -> None:
        condition = self._cond()
        async with condition:
            if id(smtp) in self._broken or not smtp.is_connected:
                self._broken.discard(id(smtp))
                self._open -= 1
                smtp.close()
            else:
                self._idle.append(smtp)
            condition.notify()

    async def _connect(self) -> aiosmtplib.SMTP:
        smtp = await open_connection(self.config)
        self.connections_made += 1
        return smtp


async def open_connection(config: SmtpConfig, timeout: float | None = None) -> aiosmtplib.SMTP:
    """Connect, negotiate TLS as configured and log in."""
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.tls == "tls",
        start_tls=config.tls == "starttls",
        username=config.username,
        password=config.password,
        timeout=timeout if timeout is not None else config.timeout,
        tls_context=config.tls_context,
    )
    await smtp.connect()
    return smtp
