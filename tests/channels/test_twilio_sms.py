from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from broadcast.channels import PermanentChannelError, SendResult, TransientChannelError
from broadcast.channels.twilio.sms import TwilioSmsChannel, TwilioSmsConfig
from tests.channels.conftest import MESSAGING_SERVICE, PUBLIC_URL, SMS_FROM, sms
from tests.support.twilio_server import ACCOUNT_SID, AUTH_TOKEN, TwilioTestServer


def make_channel(
    server: TwilioTestServer, sender: str = SMS_FROM, **kwargs: object
) -> TwilioSmsChannel:
    config = TwilioSmsConfig(
        account_sid=ACCOUNT_SID,
        auth_token=str(kwargs.pop("auth_token", AUTH_TOKEN)),
        sender=sender,
        status_callback=f"{PUBLIC_URL}/twilio/sms/status",
        api_url=server.url,
        **kwargs,  # type: ignore[arg-type]
    )
    return TwilioSmsChannel(config)


@pytest.fixture
def channel(twilio: TwilioTestServer) -> Iterator[TwilioSmsChannel]:
    with make_channel(twilio) as channel:
        yield channel  # type: ignore[misc]


def test_sends_from_a_number_with_status_callback(twilio, channel):
    # When one SMS is sent
    result = channel.send(sms(to="+447700900123", body="Burglaries reported"))

    # Then the server created a message with that SID, from our number, with the callback
    assert result.provider_id.startswith("SM") and len(result.provider_id) == 34
    assert result.provider_status == "queued"
    [request] = twilio.accepted("Messages")
    assert request.sid == result.provider_id
    assert request.param("To") == "+447700900123"
    assert request.param("Body") == "Burglaries reported"
    assert request.param("From") == SMS_FROM
    assert request.param("MessagingServiceSid") is None
    assert request.param("StatusCallback") == f"{PUBLIC_URL}/twilio/sms/status"


def test_sends_through_a_messaging_service(twilio):
    with make_channel(twilio, sender=MESSAGING_SERVICE) as channel:
        channel.send(sms())
    [request] = twilio.accepted("Messages")
    assert request.param("MessagingServiceSid") == MESSAGING_SERVICE
    assert request.param("From") is None


def test_sends_from_an_alphanumeric_sender_id(twilio):
    with make_channel(twilio, sender="WMPolice") as channel:
        channel.send(sms())
    assert twilio.accepted("Messages")[0].param("From") == "WMPolice"


@pytest.mark.parametrize(
    ("failure", "error", "code", "suppress"),
    [
        ("500", TransientChannelError, "20500", False),
        ("503", TransientChannelError, "20503", False),
        ("429", TransientChannelError, "20429", False),
        ("21211", PermanentChannelError, "21211", False),
        ("21614", PermanentChannelError, "21614", False),
        ("21610", PermanentChannelError, "21610", True),
    ],
)
def test_provider_errors_are_classified(twilio, channel, failure, error, code, suppress):
    # Given the server fails requests for one number only
    twilio.fail(failure, to="+447700900666")

    # When we send to that number
    with pytest.raises(error) as raised:
        channel.send(sms(to="+447700900666"))

    # Then the error carries the class, provider code and suppress flag, and no personal data
    assert raised.value.code == code
    assert raised.value.suppress is suppress
    assert "+447700900666" not in str(raised.value)
    # And other numbers are unaffected
    assert channel.send(sms(to="+447700900123")).provider_id.startswith("SM")


def test_a_slow_provider_times_out_as_transient_and_maybe_sent(twilio):
    twilio.fail("slow", delay=2.0)
    with make_channel(twilio, timeout=0.3) as channel:
        started = time.monotonic()
        with pytest.raises(TransientChannelError) as raised:
            channel.send(sms())
    assert time.monotonic() - started < 1.5
    assert raised.value.maybe_sent is True


def test_a_dropped_connection_is_transient_and_maybe_sent(twilio, channel):
    twilio.fail("drop", count=1)
    with pytest.raises(TransientChannelError) as raised:
        channel.send(sms())
    assert raised.value.maybe_sent is True
    # The next request gets a fresh connection and succeeds
    assert channel.send(sms()).provider_id.startswith("SM")


def test_an_outage_is_transient_and_recovers(twilio, channel):
    # Given a pooled connection exists and then the provider stops listening
    channel.send(sms())
    twilio.fail("refuse")

    # When we send during the outage, it fails as transient, and surely not sent
    with pytest.raises(TransientChannelError) as raised:
        channel.send(sms())
    assert raised.value.maybe_sent is False

    # Then after the outage the same channel sends again
    twilio.clear()
    assert channel.send(sms()).provider_id.startswith("SM")


def test_wrong_credentials_are_transient_so_fixing_settings_rescues_the_alert(twilio):
    with (
        make_channel(twilio, auth_token="wrong") as channel,
        pytest.raises(TransientChannelError) as raised,
    ):
        channel.send(sms())
    assert raised.value.code == "20003"
    assert twilio.accepted("Messages") == []


def test_send_many_keeps_order_and_reports_each_failure(twilio, channel):
    # Given one of ten numbers has opted out
    twilio.fail("21610", to="+447700900105")
    messages = [sms(delivery_id=i, to=f"+4477009001{i:02d}") for i in range(10)]

    # When they are sent together
    results = channel.send_many(messages)

    # Then each result sits at its message's position
    assert [isinstance(r, SendResult) for r in results] == [i != 5 for i in range(10)]
    assert isinstance(results[5], PermanentChannelError) and results[5].suppress
    sent = {r.param("To"): r.sid for r in twilio.accepted("Messages")}
    for message, result in zip(messages, results, strict=True):
        if isinstance(result, SendResult):
            assert sent[message.to] == result.provider_id


def test_send_many_reuses_pooled_connections(twilio, channel):
    channel.send_many([sms(delivery_id=i) for i in range(200)])
    assert len(twilio.accepted("Messages")) == 200
    assert twilio.connections_made <= channel.config.concurrency


def test_sent_messages_can_be_found_again_by_number_and_time(twilio, channel):
    # Crash recovery asks Twilio which messages went to a number since a delivery was claimed.
    claimed = datetime.now(UTC) - timedelta(seconds=2)
    first = channel.send(sms(to="+447700900123"))
    channel.send(sms(to="+447700900999"))

    found = channel.client.messages.list(to="+447700900123", date_sent_after=claimed)

    assert [m.sid for m in found] == [first.provider_id]
    later = channel.client.messages.list(
        to="+447700900123", date_sent_after=datetime.now(UTC) + timedelta(minutes=1)
    )
    assert later == []


def test_listing_follows_pages(twilio, channel):
    channel.send_many([sms(delivery_id=i, to="+447700900123") for i in range(5)])
    found = channel.client.messages.list(to="+447700900123", page_size=2)
    assert sorted(m.sid for m in found) == sorted(r.sid for r in twilio.accepted("Messages"))
