"""The network side of the Twilio test server: a minimal HTTP/1.1 keep-alive protocol on asyncio.

Enough for the official client (requests/urllib3): Content-Length bodies, keep-alive, no
chunked uploads. Replies can be delayed (slow provider) or replaced by a dropped connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    drop: bool = False  # abort the connection instead of answering


class Handler(Protocol):
    connections_made: int
    transports: set[asyncio.Transport]

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply: ...


def json_reply(status: int, payload: object) -> Reply:
    return Reply(status, json.dumps(payload).encode())


def error_reply(status: int, code: int, message: str) -> Reply:
    """Twilio's error shape: code, message, more_info, status."""
    return json_reply(
        status,
        {
            "code": code,
            "message": message,
            "status": status,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
        },
    )


class HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.handler.connections_made += 1
        self.handler.transports.add(self.transport)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.handler.transports.discard(self.transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            method, target, _ = lines[0].split(" ", 2)
            try:
                reply = self.handler.handle(method, target, headers, body)
            except Exception as exc:  # a bug in the test server must show, not hang the client
                reply = error_reply(500, 20500, f"test server error: {exc!r}")
            keep_alive = headers.get("connection", "").lower() != "close"
            if reply.delay:
                asyncio.get_running_loop().call_later(reply.delay, self._send, reply, keep_alive)
            else:
                self._send(reply, keep_alive)

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if reply.drop:
            transport.abort()
            return
        reason = HTTPStatus(reply.status).phrase
        head = (
            f"HTTP/1.1 {reply.status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(reply.body)}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        )
        transport.write(head.encode() + reply.body)
        if not keep_alive:
            transport.close()
