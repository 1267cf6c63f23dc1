from __future__ import annotations

from collections.abc import Iterator

import pytest

from broadcast.channels.base import OutboundMessage
from tests.support.smtp_server import SmtpTestServer, smtp_test_server
from tests.support.twilio_server import TwilioTestServer, twilio_test_server

PUBLIC_URL = "https://alerts.example.police.uk"
SMS_FROM = "+447700900001"
MESSAGING_SERVICE = "MG" + "a1" * 16


@pytest.fixture
def twilio() -> Iterator[TwilioTestServer]:
    with twilio_test_server() as server:
        yield server
        # Every request any test made must have conformed to Twilio's contract.
        assert server.violations == []


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with smtp_test_server() as server:
        yield server


def sms(
    delivery_id: int = 1, to: str = "+447700900123", body: str = "Burglaries reported"
) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, channel="sms", to=to, body=body)


def voice(
    delivery_id: int = 1, to: str = "+447700900123", body: str = "This is a police alert."
) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, channel="voice", to=to, body=body)


def email(
    delivery_id: int = 1, to: str = "resident@example.org", **kwargs: object
) -> OutboundMessage:
    fields: dict[str, object] = {
        "subject": "Police alert: burglaries in Northfield",
        "body": "Three burglaries were reported last night.",
        "html": "<p>Three burglaries were reported <b>last night</b>.</p>",
        "unsubscribe_url": f"{PUBLIC_URL}/u/abc123",
    } | kwargs
    return OutboundMessage(delivery_id=delivery_id, channel="email", to=to, **fields)  # type: ignore[arg-type]
