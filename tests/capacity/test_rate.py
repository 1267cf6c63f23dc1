from __future__ import annotations

import pytest

from broadcast.capacity import Rate, channel_rate, parse_rate
from broadcast.errors import ConfigurationError
from broadcast.settings import Settings


@pytest.mark.parametrize(
    ("text", "count", "seconds", "shown"),
    [
        ("500/1h", 500, 3600, "500/h"),
        ("500/h", 500, 3600, "500/h"),
        ("10/1s", 10, 1, "10/s"),
        ("30/10s", 30, 10, "30/10s"),
        ("1000/1m", 1000, 60, "1000/m"),
        ("2/1d", 2, 86400, "2/d"),
        ("120/60m", 120, 3600, "120/h"),
        (" 20 / 0.5s ", 20, 0.5, "20/0.5s"),
        ("7/90S", 7, 90, "7/90s"),
    ],
)
def test_parses_count_and_duration(text: str, count: int, seconds: float, shown: str) -> None:
    rate = Rate.parse(text)

    assert (rate.count, rate.seconds) == (count, seconds)
    assert str(rate) == shown
    # The printed form parses back to the same rate.
    assert Rate.parse(str(rate)) == rate


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0/1h", "count must be at least 1"),
        ("10/0s", "duration must be longer than 0"),
        ("abc", "is not a rate"),
        ("-5/1h", "is not a rate"),
        ("10/-1s", "is not a rate"),
        ("500", "is not a rate"),
        ("500/1y", "is not a rate"),
        ("1.5/1h", "is not a rate"),
    ],
)
def test_garbage_is_refused_with_a_message_that_says_why(text: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match=says) as caught:
        Rate.parse(text, setting="BROADCAST_VOICE_RATE")
    assert "BROADCAST_VOICE_RATE" in str(caught.value)


@pytest.mark.parametrize("text", [None, "", "  ", "unlimited", "None"])
def test_unset_means_unlimited(text: str | None) -> None:
    assert parse_rate(text) is None


def test_rate_refuses_impossible_values_when_built_directly() -> None:
    with pytest.raises(ConfigurationError):
        Rate(0, 1)
    with pytest.raises(ConfigurationError):
        Rate(5, 0)
    assert Rate(500, 3600).per_second == pytest.approx(500 / 3600)


def test_channel_rate_reads_the_settings_and_names_a_bad_one() -> None:
    # Given the default settings: voice is capped, sms and email are not.
    settings = Settings()
    assert channel_rate(settings, "voice") == Rate(500, 3600)
    assert channel_rate(settings, "sms") is None

    # When an operator writes garbage, the error names the variable to fix.
    with pytest.raises(ConfigurationError, match="BROADCAST_SMS_RATE"):
        channel_rate(Settings(sms_rate="lots"), "sms")
    with pytest.raises(ConfigurationError, match="unknown channel"):
        channel_rate(settings, "fax")


def test_guarded_rate_holds_each_slot_a_little_longer() -> None:
    from broadcast.capacity import guarded

    # Given the default guard of 0.25 s
    assert guarded(Rate(500, 3600), 0.25) == Rate(500, 3600.25)
    # Then it is capped at 2.5% of a short window, and nothing changes without a rate or guard
    assert guarded(Rate(20, 2), 0.25) == Rate(20, 2.05)
    assert guarded(None, 0.25) is None
    assert guarded(Rate(20, 2), 0) == Rate(20, 2)
