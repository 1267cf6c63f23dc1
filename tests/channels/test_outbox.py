from __future__ import annotations

import logging
import multiprocessing
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

import broadcast.channels as channels
from broadcast.channels import OutboxChannel, build_channel
from broadcast.channels.email.channel import SmtpEmailChannel
from broadcast.channels.outbox import append_json_line, read_json_lines
from broadcast.channels.twilio.sms import TwilioSmsChannel
from broadcast.channels.twilio.voice import TwilioVoiceChannel
from broadcast.settings import Settings
from tests.channels.conftest import MESSAGING_SERVICE, PUBLIC_URL, email, sms, voice


def test_unconfigured_channels_write_to_the_outbox_and_say_so(tmp_path, caplog):
    # Given a fresh machine: no provider settings at all
    settings = Settings(outbox_dir=tmp_path / "outbox", public_url=PUBLIC_URL)

    # When each channel is built and sends one message
    with caplog.at_level(logging.WARNING, logger="broadcast.channels"):
        built = {name: build_channel(name, settings) for name in ("sms", "email", "voice")}
    for channel in built.values():
        assert isinstance(channel, OutboxChannel)
    built["sms"].send(sms(delivery_id=7, body="Burglaries reported"))
    built["voice"].send(voice(delivery_id=8, body="Police alert. Press 9 to stop these calls."))
    result = built["email"].send(email(delivery_id=9))

    # Then a loud warning names the outbox path for every channel
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert all("NOT sent" in w and str(tmp_path / "outbox") in w for w in warnings)

    # And the files hold what would have been sent
    [text] = read_json_lines(tmp_path / "outbox" / "sms.jsonl")
    assert text["delivery_id"] == 7 and text["to"] == "+447700900123"
    assert text["body"] == "Burglaries reported"
    [call] = read_json_lines(tmp_path / "outbox" / "voice.jsonl")
    gather = ET.fromstring(str(call["twiml"])).find("Gather")
    assert gather is not None and gather.get("action") == f"{PUBLIC_URL}/twilio/voice/gather"
    assert [s.get("language") for s in gather.findall("Say")] == ["en-GB", "en-GB"]
    raw = (tmp_path / "outbox" / "email" / "9.eml").read_bytes()
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert message["Message-ID"].strip() == result.provider_id
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_body(("html",)) is not None


def test_configured_channels_use_the_providers(tmp_path):
    settings = Settings(
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="token",
        sms_from=MESSAGING_SERVICE,
        voice_from="+441632960000",
        smtp_host="127.0.0.1",
        email_from="alerts@example.org",
        twilio_api_url="http://127.0.0.1:9",
        public_url=PUBLIC_URL,
    )
    sms_channel = build_channel("sms", settings)
    voice_channel = build_channel("voice", settings)
    email_channel = build_channel("email", settings)
    try:
        assert isinstance(sms_channel, TwilioSmsChannel)
        assert sms_channel.config.uses_messaging_service
        assert sms_channel.config.status_callback == f"{PUBLIC_URL}/twilio/sms/status"
        assert sms_channel.client.api.base_url == "http://127.0.0.1:9"
        assert isinstance(voice_channel, TwilioVoiceChannel)
        assert voice_channel.config.status_callback == f"{PUBLIC_URL}/twilio/voice/status"
        assert isinstance(email_channel, SmtpEmailChannel)
        assert email_channel.config.tls == "starttls"
    finally:
        for channel in (sms_channel, voice_channel, email_channel):
            channel.close()


def test_an_unknown_channel_is_refused():
    with pytest.raises(ValueError):
        build_channel("fax", Settings())  # type: ignore[arg-type]


def _append_many(path: str, writer: int) -> None:
    for i in range(200):
        append_json_line(Path(path), {"writer": writer, "i": i, "pad": "x" * 3000})


def test_appends_are_whole_lines_across_threads_and_processes(tmp_path):
    # Given two processes and four threads appending big lines to the same file at once
    path = tmp_path / "sms.jsonl"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_many, args=(str(path), w)) for w in (1, 2)]
    for process in processes:
        process.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda w: _append_many(str(path), w), (3, 4, 5, 6)))
    for process in processes:
        process.join(30)

    # Then every line parses and none is lost
    records = read_json_lines(path)
    assert len(records) == 6 * 200
    assert {(r["writer"], r["i"]) for r in records} == {
        (w, i) for w in range(1, 7) for i in range(200)
    }


def test_public_api_is_exported():
    for name in channels.__all__:
        assert hasattr(channels, name)
