from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from broadcast.channels import PermanentChannelError, TransientChannelError
from broadcast.channels.twilio.voice import TwilioVoiceChannel, TwilioVoiceConfig, voice_twiml
from tests.channels.conftest import PUBLIC_URL, voice
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, TwilioTestServer

VOICE_FROM = "+441632960000"
SCRIPT = (
    "This is Example Constabulary. Burglaries were reported in your area & <nearby>. "
    "Press 9 to stop these calls."
)


def make_channel(server: TwilioTestServer, machine_detection: bool = False) -> TwilioVoiceChannel:
    return TwilioVoiceChannel(
        TwilioVoiceConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            caller_id=VOICE_FROM,
            status_callback=f"{PUBLIC_URL}/twilio/voice/status",
            gather_url=f"{PUBLIC_URL}/twilio/voice/gather",
            api_url=server.url,
            machine_detection=machine_detection,
        )
    )


def test_twiml_says_the_script_twice_in_british_english_inside_a_press_9_gather():
    root = ET.fromstring(voice_twiml(SCRIPT, "https://x.example/twilio/voice/gather"))

    assert root.tag == "Response"
    [gather] = list(root)
    assert gather.tag == "Gather"
    assert gather.get("numDigits") == "1"
    assert gather.get("action") == "https://x.example/twilio/voice/gather"
    says = gather.findall("Say")
    assert len(says) == 2
    assert all(say.get("language") == "en-GB" and say.text == SCRIPT for say in says)


def test_places_a_call_with_inline_twiml_and_status_callback(twilio):
    with make_channel(twilio) as channel:
        result = channel.send(voice(to="+447700900123", body=SCRIPT))

    assert result.provider_id.startswith("CA") and len(result.provider_id) == 34
    [request] = twilio.accepted("Calls")
    assert request.sid == result.provider_id
    assert request.param("To") == "+447700900123"
    assert request.param("From") == VOICE_FROM
    assert request.param("StatusCallback") == f"{PUBLIC_URL}/twilio/voice/status"
    assert request.param("Url") is None
    assert request.param("MachineDetection") is None
    assert request.param("Twiml") == voice_twiml(SCRIPT, f"{PUBLIC_URL}/twilio/voice/gather")
    say = ET.fromstring(request.param("Twiml") or "").find("Gather/Say")
    assert say is not None and "Press 9" in (say.text or "")


def test_answering_machine_detection_is_optional(twilio):
    with make_channel(twilio, machine_detection=True) as channel:
        channel.send(voice())
    assert twilio.accepted("Calls")[0].param("MachineDetection") == "Enable"


@pytest.mark.parametrize(
    ("failure", "error"),
    [
        ("503", TransientChannelError),
        ("429", TransientChannelError),
        ("21211", PermanentChannelError),
    ],
)
def test_call_failures_are_classified(twilio, failure, error):
    twilio.fail(failure, count=1)
    with make_channel(twilio) as channel:
        with pytest.raises(error):
            channel.send(voice())
        # count=1: the failure was used up, the retry goes through
        assert channel.send(voice()).provider_id.startswith("CA")
