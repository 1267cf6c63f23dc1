"""Benchmark: CPU per message of each channel's send path, in one process, into the lean sinks.

    .venv/bin/python bench/channel_cost.py --n 3000

SMS through the official Twilio client on its stock `requests` transport and on ours
(`twilio_transport.LeanHttpClient`), one request at a time; email through aiosmtplib with an
`email.message.EmailMessage` (the old path) and with the bytes writer (`email_bytes`), and the
channel's `send_many` in lanes. Not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.throughput import start_sink, stop_sink  # noqa: E402
from broadcast.channels.base import OutboundMessage  # noqa: E402
from broadcast.channels.email.channel import SmtpEmailChannel  # noqa: E402
from broadcast.channels.email.config import SmtpConfig  # noqa: E402
from broadcast.channels.email.message import build_email  # noqa: E402
from broadcast.channels.twilio.client import requests_client  # noqa: E402
from broadcast.channels.twilio.sms import TwilioSmsChannel, TwilioSmsConfig  # noqa: E402
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN  # noqa: E402

BODY = "Police alert: road closed on the high street tonight. Manage: https://x.example/m/abc"


def cpu_per(call, n: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(ms of CPU per call, calls per second of wall time) after a short warm-up."""
    for _ in range(min(200, n)):
        call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        call()
    return (time.process_time() - cpu) / n * 1e3, n / (time.perf_counter() - wall)


def sms(url: str, n: int) -> None:
    config = TwilioSmsConfig(ACCOUNT_SID, AUTH_TOKEN, "+447700900999", "https://x.example/s", url)
    lean = TwilioSmsChannel(config)
    stock = TwilioSmsChannel(config)
    stock.client.http_client = requests_client({}, None, 10.0, 8)
    message = OutboundMessage(1, "sms", "+447700900123", BODY)
    for name, channel in (("requests (stock)", stock), ("urllib3 (ours)", lean)):
        ms, rate = cpu_per(lambda c=channel: c.send(message), n)
        print(f"sms via {name:<17} {ms:.3f} ms CPU/send  {rate:,.0f}/s one at a time")


def email(port: int, n: int) -> None:
    config = SmtpConfig("127.0.0.1", port, "alerts@example.org", tls="none")
    messages = [
        OutboundMessage(
            i,
            "email",
            f"p{i}@example.org",
            BODY * 8,
            subject="Police alert",
            html="<p>x</p>" * 40,
            unsubscribe_url="https://x.example/u/abc",
        )
        for i in range(500)
    ]
    channel = SmtpEmailChannel(config)
    batches = max(1, n // len(messages))

    async def old_way() -> None:  # EmailMessage + send_message, one connection, in order
        async with channel._pool.connection() as smtp:
            for m in messages:
                await smtp.send_message(build_email(m, config.sender), recipients=[m.to])

    def run_old() -> None:
        asyncio.run_coroutine_threadsafe(old_way(), channel._loop).result()

    for name, call in (
        ("EmailMessage (old)", run_old),
        ("bytes, send_many", lambda: channel.send_many(messages)),
    ):
        call()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(batches):
            call()
        sent = batches * len(messages)
        print(
            f"email via {name:<19} {(time.process_time() - cpu) / sent * 1e3:.3f} ms CPU/send  "
            f"{sent / (time.perf_counter() - wall):,.0f}/s"
        )
    channel.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    twilio, url = start_sink([sys.executable, "-m", "bench.sinks", "twilio"])
    smtp, port = start_sink([sys.executable, "-m", "bench.sinks", "smtp"])
    try:
        sms(url, args.n)
        email(int(port), args.n)
    finally:
        stop_sink(twilio)
        stop_sink(smtp)


if __name__ == "__main__":
    main()
