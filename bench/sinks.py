"""Lean loopback sinks for the throughput benchmark, each run as its own process.

    python -m bench.sinks twilio --port N     # Twilio-compatible: 201 + SID for Messages/Calls
    python -m bench.sinks smtp --port N       # SMTP with PIPELINING, accepts every message

They accept everything and check nothing, so their own CPU stays small next to the engine's:
the Twilio test server (tests/support/twilio_server.py) checks every request against the
OpenAPI contract and records it, which is what tests need, not what a throughput bench needs.
Each prints `READY <url-or-port>` when listening and `COUNT <n>` when stopped with SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys

COUNT = 0


class TwilioSink(asyncio.Protocol):
    """HTTP/1.1 keep-alive, Content-Length bodies: enough for requests/urllib3."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        global COUNT
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).lower()
            at = head.find(b"content-length:")
            length = 0
            if at >= 0:
                stop = head.find(b"\r\n", at)
                length = int(head[at + 15 : stop if stop >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                return
            target = head.split(b" ", 2)[1]
            del self.buffer[: end + 4 + length]
            COUNT += 1
            prefix = "CA" if target.endswith(b"/calls.json") else "SM"
            sid = f"{prefix}{os.urandom(16).hex()}"
            body = json.dumps({"sid": sid, "status": "queued"}).encode()
            self.transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )


class SmtpSink(asyncio.Protocol):
    """ESMTP with PIPELINING: replies to every command line, swallows DATA until '.'."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buffer = bytearray()
        self.in_data = False
        transport.write(b"220 sink ESMTP\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        global COUNT
        self.buffer += data
        out = []
        while True:
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    break
                del self.buffer[: end + 5]
                self.in_data = False
                COUNT += 1
                out.append(b"250 2.0.0 queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                break
            verb = bytes(self.buffer[:4]).upper()
            del self.buffer[: end + 2]
            if verb == b"EHLO":
                out.append(b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n")
            elif verb == b"DATA":
                # The data may start with the CRLF that ended the command: keep it in the buffer
                # so "\r\n.\r\n" also matches an empty body.
                self.buffer[0:0] = b"\r\n"
                self.in_data = True
                out.append(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                out.append(b"221 bye\r\n")
                self.transport.write(b"".join(out))  # type: ignore[attr-defined]
                self.transport.close()  # type: ignore[attr-defined]
                return
            else:
                out.append(b"250 OK\r\n")
        if out:
            self.transport.write(b"".join(out))  # type: ignore[attr-defined]


async def serve(kind: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    protocol = TwilioSink if kind == "twilio" else SmtpSink
    server = await loop.create_server(protocol, "127.0.0.1", port, reuse_address=True, backlog=512)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {'http://127.0.0.1:' if kind == 'twilio' else ''}{bound}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"COUNT {COUNT}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("twilio", "smtp"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.kind, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
