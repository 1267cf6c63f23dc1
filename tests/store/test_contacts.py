from __future__ import annotations

import random

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast import contacts
from broadcast.errors import InvalidInput
from broadcast.phone_fast import classify_uk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07911 123456", "+447911123456"),
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911-123456", "+447911123456"),
        ("(07911) 123456", "+447911123456"),  # unusual shape: phonenumbers decides
        ("07624 123456", "+447624123456"),  # Isle of Man mobile, country code 44
        ("07781 123456", "+447781123456"),  # Guernsey mobile
    ],
)
def test_mobile_numbers_are_normalised_to_e164(raw: str, expected: str) -> None:
    assert contacts.normalise_mobile(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("020 7946 0123", "not a mobile"),
        ("hello", "not a phone number"),
        ("+33 6 12 34 56 78", r"not a UK \(\+44\) number"),
        ("07700 900123", "not a valid UK phone number"),  # Ofcom drama range: not allocated
        ("", "empty"),
    ],
)
def test_bad_mobile_numbers_say_why(raw: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        contacts.normalise_mobile(raw)


def test_voice_accepts_landlines_and_mobiles() -> None:
    assert contacts.normalise_voice_number("020 7946 0123") == "+442079460123"
    assert contacts.normalise_voice_number("07911123456") == "+447911123456"
    with pytest.raises(InvalidInput):
        contacts.normalise_voice_number("0800 123")


def test_fast_path_agrees_with_phonenumbers_on_random_numbers() -> None:
    # Given 30,000 random UK-shaped numbers in several writings
    rng = random.Random(7)
    prefixes = ["07", "01", "02", "03", "05", "08", "09", "07624", "07781", "0800", "0845"]
    checked = valid = 0
    for _ in range(30_000):
        prefix = rng.choice(prefixes)
        digits = prefix + "".join(rng.choice("0123456789") for _ in range(11 - len(prefix)))
        raw = rng.choice([digits, "+44" + digits[1:], f"{digits[:5]} {digits[5:]}"])
        # When both classify it
        fast = classify_uk(raw)
        assert fast is not None
        parsed = phonenumbers.parse(raw, "GB")
        slow_type = phonenumbers.number_type(parsed)
        # Then they agree on the type and the E.164 form
        assert fast[1] == slow_type, raw
        if slow_type != phonenumbers.PhoneNumberType.UNKNOWN:
            valid += 1
            assert fast[0] == phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.E164
            )
        checked += 1
    assert checked == 30_000 and valid > 1000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sw1a1aa", "SW1A 1AA"),
        (" ec1a  1bb ", "EC1A 1BB"),
        ("M1 1AE", "M1 1AE"),
        ("dn551pt", "DN55 1PT"),
        ("GIR 0AA", "GIR 0AA"),
    ],
)
def test_postcodes(raw: str, expected: str) -> None:
    assert contacts.normalise_postcode(raw) == expected


@pytest.mark.parametrize("raw", ["XYZ", "SW1A", "12345", "QA1 1AA", ""])
def test_bad_postcodes(raw: str) -> None:
    with pytest.raises(InvalidInput, match="postcode"):
        contacts.normalise_postcode(raw)


def test_emails_are_lower_cased_and_checked_without_dns() -> None:
    assert contacts.normalise_email(" Jo.Bloggs@Example.COM ") == "jo.bloggs@example.com"
    for bad in ("jo@", "a@@b.com", "no-at-sign", "jo@localhost"):
        with pytest.raises(InvalidInput, match="email"):
            contacts.normalise_email(bad)


def test_areas_and_topics() -> None:
    assert contacts.normalise_area("sw1a") == "SW1A"
    assert contacts.normalise_area("sw1a 1") == "SW1A 1"
    assert contacts.normalise_area("City Centre") == "city-centre"
    with pytest.raises(InvalidInput, match="one of: north"):
        contacts.normalise_area("Elsewhere", frozenset({"north"}))
    assert contacts.normalise_topic("Missing Person", frozenset({"missing-person"})) == (
        "missing-person"
    )
    with pytest.raises(InvalidInput, match="not a known topic"):
        contacts.normalise_topic("cats", frozenset({"fraud"}))


@settings(max_examples=1500, deadline=None)
@given(st.from_regex(r"\A[a-zA-Z0-9_+.-]{1,70}@[a-zA-Z0-9.-]{1,70}\.[a-zA-Z]{1,8}\Z"))
def test_plain_email_fast_path_agrees_with_email_validator(address: str) -> None:
    # Given any address the fast path would accept
    lowered = address.lower()
    if not contacts.is_plain_email(lowered):
        return
    # Then email-validator accepts it too, with the same normalised form
    result = validate_email(address, check_deliverability=False)
    assert result.normalized.lower() == lowered


def test_unusual_addresses_still_go_through_email_validator() -> None:
    assert contacts.normalise_email("Jöe@Exämple.com") == "jöe@exämple.com"
    for bad in ("a@x.test", "a@x--y.com.", "a..b@example.com", "a@-x.com"):
        with pytest.raises(InvalidInput):
            contacts.normalise_email(bad)
