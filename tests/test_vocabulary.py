"""The shared words (broadcast/vocabulary.py) agree with themselves and with the SQL form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from broadcast import vocabulary
from broadcast.vocabulary import CHANNELS, ChannelLiteral, ChannelName, address_for, split_channels


@dataclass
class Person:
    email: str | None = None
    mobile: str | None = None
    landline: str | None = None


def test_the_channel_type_names_the_enum_in_canonical_order() -> None:
    assert get_args(ChannelLiteral) == CHANNELS == ("sms", "email", "voice")
    assert set(vocabulary.ADDRESS_FIELDS) == set(ChannelName)


def test_voice_uses_the_landline_else_the_mobile() -> None:
    both = Person(email="a@example.org", mobile="+447911123456", landline="+442079460123")
    mobile_only = Person(mobile="+447911123456")
    assert address_for("voice", both) == "+442079460123"
    assert address_for("voice", mobile_only) == "+447911123456"
    assert address_for("sms", both) == "+447911123456"
    assert address_for("email", both) == "a@example.org"
    assert address_for("email", mobile_only) is None
    assert address_for("voice", Person()) is None


def test_alert_channels_drop_empty_entries() -> None:
    assert split_channels("sms,,voice,") == ("sms", "voice")
    assert split_channels("") == ()


def test_completed_is_stored_as_done() -> None:
    assert vocabulary.AlertState.COMPLETED == "done"
    assert set(vocabulary.PROBLEM_STATES) == {*vocabulary.UNREACHED_STATES, "suppressed"}
