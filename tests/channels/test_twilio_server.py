"""The Twilio test server itself: it must hold requests to Twilio's contract, or the channel
tests that rely on ``violations == []`` prove nothing."""

from __future__ import annotations

import requests

from tests.channels.conftest import sms
from tests.channels.test_twilio_sms import make_channel
from tests.support.twilio_process import twilio_server_process
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, twilio_test_server

AUTH = (ACCOUNT_SID, AUTH_TOKEN)


def messages_url(base: str) -> str:
    return f"{base}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


def test_rejects_requests_that_break_the_contract():
    with twilio_test_server() as server:
        url = messages_url(server.url)
        # Unknown parameter name (a typo of StatusCallback)
        bad = requests.post(
            url,
            auth=AUTH,
            data={"To": "+447700900123", "From": "+44", "Body": "x", "StatusCalback": "https://x/"},
        )
        # Missing content, and a wrong enum value
        empty = requests.post(url, auth=AUTH, data={"To": "+447700900123", "From": "+44"})
        enum = requests.post(
            url,
            auth=AUTH,
            data={"To": "+4477", "From": "+44", "Body": "x", "ContentRetention": "forever"},
        )
        calls = requests.post(
            url.replace("Messages", "Calls"), auth=AUTH, data={"To": "+447700900123", "From": "+44"}
        )

        assert [r.status_code for r in (bad, empty, enum, calls)] == [400] * 4
        assert bad.json()["code"] and bad.json()["more_info"].startswith("https://")
        assert server.accepted("Messages") == [] and server.accepted("Calls") == []
        problems = "\n".join(server.violations)
        assert "unknown parameter 'StatusCalback'" in problems
        assert "one of Body, MediaUrl, ContentSid is required" in problems
        assert "ContentRetention='forever'" in problems
        assert "one of Url, Twiml, ApplicationSid is required" in problems


def test_checks_basic_auth_and_account():
    with twilio_test_server() as server:
        url = messages_url(server.url)
        data = {"To": "+447700900123", "From": "+44", "Body": "x"}
        assert requests.post(url, data=data).status_code == 401
        assert requests.post(url, auth=(ACCOUNT_SID, "nope"), data=data).json()["code"] == 20003
        assert requests.post(url, auth=AUTH, data=data).status_code == 201


def test_runs_as_a_separate_process_with_a_record_file(tmp_path):
    # Given the server in its own process, as worker-process tests use it
    with twilio_server_process(tmp_path / "twilio.jsonl") as server:
        server.fail("21610", to="+447700900666")
        with make_channel(server) as channel:  # type: ignore[arg-type]
            results = channel.send_many([sms(1), sms(2, to="+447700900666"), sms(3)])

        # Then the records in the file show what the process received
        records = server.requests
        assert len(records) == 3
        assert [r.status for r in records if r.param("To") == "+447700900666"] == [400]
        assert len(server.accepted("Messages")) == 2
        assert results[1].suppress  # type: ignore[union-attr]
        assert server.violations == []
