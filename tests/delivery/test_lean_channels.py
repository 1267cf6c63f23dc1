"""The lean send paths keep the messages and errors of the old ones: SMTP bytes written directly
(read back by a real aiosmtpd server) and the Twilio client's urllib3 transport."""

from __future__ import annotations

import pytest

from broadcast.channels import OutboundMessage, TransientChannelError
from broadcast.channels.email.channel import SmtpEmailChannel
from broadcast.channels.email.config import SmtpConfig
from broadcast.channels.twilio.sms import TwilioSmsChannel, TwilioSmsConfig
from tests.support.servers import free_port
from tests.support.smtp_server import smtp_test_server
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_test_server

SENDER = "Gendarmerie Été <alerts@alerts.example.police.uk>"
TEXT = (
    "Cambriolages à Northfield — soyez vigilants.\n"
    ".A line that starts with a dot, and a long one: " + "word " * 40 + "\n"
    "Emoji 🚓 and tab\there.\n"
)


def test_email_bytes_round_trip_through_a_real_smtp_server() -> None:
    with smtp_test_server() as server:
        config = SmtpConfig("127.0.0.1", server.port, SENDER, tls="none", timeout=5.0)
        with SmtpEmailChannel(config) as channel:
            messages = [
                OutboundMessage(
                    i,
                    "email",
                    f"r{i}@example.org",
                    TEXT,
                    subject="Alerte : vol à Northfield",
                    html="<p>Cambriolages <b>à</b> Northfield</p>",
                    unsubscribe_url=f"https://x.example/u/{i}",
                )
                for i in range(6)
            ] + [OutboundMessage(9, "email", "plain@example.org", "Plain text only", subject="S")]
            results = channel.send_many(messages)
    by_to = {m.rcpt_tos[0]: m.message for m in server.messages}
    assert len(by_to) == 7
    for i in range(6):
        message = by_to[f"r{i}@example.org"]
        # Then headers, both parts and their UTF-8 text read back exactly as written
        assert message["Subject"] == "Alerte : vol à Northfield"
        assert message["From"] == SENDER
        assert message["Message-ID"].strip() == results[i].provider_id  # type: ignore[union-attr]
        assert message["List-Unsubscribe"] == f"<https://x.example/u/{i}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_content_type() == "multipart/alternative"
        # (the server parses the CRLF wire form, as it does for EmailMessage-built mail)
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert text.replace("\r\n", "\n") == TEXT
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert html.strip() == "<p>Cambriolages <b>à</b> Northfield</p>"
    plain = by_to["plain@example.org"]
    assert plain.get_content_type() == "text/plain" and plain["List-Unsubscribe"] is None
    assert plain.get_content().strip() == "Plain text only"


def twilio(url: str) -> TwilioSmsChannel:
    return TwilioSmsChannel(
        TwilioSmsConfig(ACCOUNT_SID, AUTH_TOKEN, "+447700900999", "https://x/s", api_url=url)
    )


def test_twilio_transport_sends_valid_requests_and_classifies_failures() -> None:
    sms = OutboundMessage(1, "sms", "+447700900123", "Café closed — road works")
    with twilio_test_server() as server:
        with twilio(server.url) as channel:
            assert channel.send(sms).provider_id.startswith("SM")
            server.fail("503", count=1)
            with pytest.raises(TransientChannelError) as unavailable:
                channel.send(sms)
            assert unavailable.value.code == "20503"
            server.fail("lost-response", count=1)
            with pytest.raises(TransientChannelError) as lost:
                channel.send(sms)
            assert lost.value.maybe_sent is True
        [first, *_] = server.requests
        assert first.param("Body") == "Café closed — road works" and server.violations == []
    # Nothing listening: refused before sending, so safe to retry
    with twilio(f"http://127.0.0.1:{free_port()}") as channel:
        with pytest.raises(TransientChannelError) as refused:
            channel.send(sms)
        assert refused.value.maybe_sent is False
