"""A real aiosmtpd SMTP server on a free loopback port that keeps what it receives.

It counts connections (so tests can prove connection reuse), can refuse given recipients or
the DATA command with any reply code, can require AUTH, can speak STARTTLS or implicit TLS with
a throwaway self-signed certificate, and can hang up on every open session.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support.servers import free_port


@dataclass(frozen=True)
class ReceivedEmail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    received_at: float = field(default_factory=time.time)  # when DATA came in


class SmtpTestServer:
    """State shared with the aiosmtpd handler; use through ``smtp_test_server()``."""

    def __init__(self, credentials: tuple[str, str] | None) -> None:
        self.credentials = credentials
        self.messages: list[ReceivedEmail] = []
        self.connections = 0
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_context: ssl.SSLContext | None = None  # a client context trusting our cert
        self._lock = threading.Lock()
        self._rcpt_failures: dict[str, str] = {}
        self._data_failures: list[str] = []
        self._sessions: list[SMTP] = []
        self._controller: Controller | None = None
        self.data_delay = 0.0  # seconds before each DATA is answered (a slow server)

    def refuse_recipient(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        """Answer RCPT TO:<address> with ``reply`` (a 4xx or 5xx line) until cleared."""
        with self._lock:
            self._rcpt_failures[address.lower()] = reply

    def refuse_data(self, reply: str = "554 5.7.1 Message rejected", count: int = 1) -> None:
        """Answer the next ``count`` DATA commands with ``reply``."""
        with self._lock:
            self._data_failures += [reply] * count

    def clear(self) -> None:
        with self._lock:
            self._rcpt_failures.clear()
            self._data_failures.clear()

    def hang_up_all(self) -> None:
        """Close every open session from the server side, as a server restart would."""
        assert self._controller is not None
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            if session.transport is not None:
                self._controller.loop.call_soon_threadsafe(session.transport.close)

    # aiosmtpd handler hooks -------------------------------------------------------------
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            refusal = self._rcpt_failures.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self._lock:
            if self._data_failures:
                return self._data_failures.pop(0)
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        with self._lock:
            self.messages.append(
                ReceivedEmail(envelope.mail_from, list(envelope.rcpt_tos), message, raw)
            )  # type: ignore[arg-type]
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False)

    def _session_opened(self, session: SMTP) -> None:
        with self._lock:
            self.connections += 1
            self._sessions.append(session)


class _Controller(Controller):
    def __init__(self, state: SmtpTestServer, **kwargs: Any) -> None:
        self.state = state
        super().__init__(state, **kwargs)

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # AUTH without TLS is what the "none" mode tests on purpose; loopback only.
            warnings.simplefilter("ignore", UserWarning)
            session = super().factory()
        self.state._session_opened(session)
        return session


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextmanager
def smtp_test_server(
    *, tls: Literal["none", "starttls", "tls"] = "none", credentials: tuple[str, str] | None = None
) -> Iterator[SmtpTestServer]:
    """A running SMTP server; ``credentials`` (user, password) makes AUTH mandatory."""
    state = SmtpTestServer(credentials)
    workdir = Path(tempfile.mkdtemp(prefix="broadcast-smtp-"))
    kwargs: dict[str, Any] = {"hostname": "127.0.0.1", "port": free_port()}
    if tls != "none":
        cert, key = _self_signed(workdir)
        server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_context.load_cert_chain(cert, key)
        state.tls_context = ssl.create_default_context(cafile=str(cert))
        kwargs["ssl_context" if tls == "tls" else "tls_context"] = server_context
        kwargs["require_starttls"] = tls == "starttls"
    if credentials:
        kwargs |= {
            "authenticator": state._authenticate,
            "auth_required": True,
            "auth_require_tls": False,
        }
    controller = _Controller(state, **kwargs)
    controller.start()
    state._controller = controller
    state.port = controller.port
    with state._lock:  # forget the controller's own start-up probe
        state.connections = 0
        state._sessions.clear()
    try:
        yield state
    finally:
        controller.stop()
        shutil.rmtree(workdir, ignore_errors=True)
