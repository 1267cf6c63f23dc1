from __future__ import annotations

import itertools
import random
import re
from types import SimpleNamespace

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonemetadata import PhoneNumberDesc
from phonenumbers.phonenumberutil import _number_type_helper

from broadcast.errors import InvalidInput
from broadcast.registrants import contacts, phone_fast
from broadcast.registrants.phone_fast import classify_uk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07911 123456", "+447911123456"),
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911-123456", "+447911123456"),
        ("(07911) 123456", "+447911123456"),  # unusual shape: phonenumbers decides
        ("07624 123456", "+447624123456"),  # Isle of Man mobile, country code 44
        ("07781 123456", "+447781123456"),  # Guernsey mobile
        ("07911 \u0661\u0662\u0663\u0664\u0665\u0666", "+447911123456"),  # Arabic-Indic digits
        ("07911\u00a0123456", "+447911123456"),  # no-break space
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


KIND = phonenumbers.PhoneNumberType
UNKNOWN = KIND.UNKNOWN
# Every first two digits of a national number, and the starts of the Crown Dependencies' ranges
# and of other ranges a random number would rarely reach (7- and 9-digit numbers among them).
NATIONAL_PREFIXES = [str(n) for n in range(10, 100)] + [
    *("1481", "1534", "1624", "16242", "7781", "7839", "79111", "79117", "7509", "7829", "7937"),
    *("77003", "7797", "74576", "7524", "7624", "76245", "7924", "76464", "800", "8001111"),
    *("845464", "844", "872299", "808162", "90", "56", "70", "3440", "33", "55"),
    *("120461", "17442", "13638"),
]
WRITINGS = (
    lambda n: "0" + n,
    lambda n: "+44" + n,
    lambda n: f"0044 {n[:4]} {n[4:]}",
    lambda n: f"+44 (0){n}",
    lambda n: f"0{n[:4]} {n[4:]}",
    lambda n: f"0{n[:3]}-{n[3:6]}-{n[6:]}",
)


def test_fast_path_agrees_with_phonenumbers_on_random_numbers() -> None:
    # Given 40,000 random UK-shaped numbers of 7 to 12 digits in several writings
    rng = random.Random(7)
    seen: set[tuple[str | None, int]] = set()
    for _ in range(40_000):
        length = rng.choice((7, 7, 8, 9, 9, 10, 10, 10, 10, 11, 12))
        digits = rng.choice(NATIONAL_PREFIXES) + "".join(rng.choices("0123456789", k=length))
        raw = rng.choice(WRITINGS)(digits[:length])
        # When both classify it
        fast = classify_uk(raw)
        assert fast is not None, raw
        parsed = phonenumbers.parse(raw, "GB")
        slow_type = phonenumbers.number_type(parsed)
        # Then they agree on the type, on validity and on the E.164 form of valid numbers
        assert fast[1] == slow_type, raw
        assert (slow_type != UNKNOWN) == phonenumbers.is_valid_number(parsed), raw
        if slow_type != UNKNOWN:
            e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            assert fast[0] == e164, raw
        seen.add((phonenumbers.region_code_for_number(parsed), slow_type))
    # And the sample reached every kind of number in every region that can own one
    assert seen >= {
        *(("GB", k) for k in (KIND.FIXED_LINE, KIND.MOBILE, KIND.TOLL_FREE, KIND.VOIP)),
        *(("GB", k) for k in (KIND.PREMIUM_RATE, KIND.PERSONAL_NUMBER, KIND.PAGER, KIND.UAN)),
        *((r, k) for r in ("GG", "IM", "JE") for k in (KIND.FIXED_LINE, KIND.MOBILE)),
        ("GG", KIND.PREMIUM_RATE),
        ("IM", UNKNOWN),  # leading digits make it the Isle of Man's, valid or not
        (None, UNKNOWN),
    }


def _desc(pattern: str, *lengths: int) -> PhoneNumberDesc:
    return PhoneNumberDesc(national_number_pattern=pattern, possible_length=lengths)


def _metadata(**descs: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "general_desc": None,
        **dict.fromkeys(("premium_rate", "toll_free", "shared_cost", "voip")),
        **dict.fromkeys(("personal_number", "pager", "uan", "voicemail", "fixed_line", "mobile")),
        "same_mobile_and_fixed_line_pattern": False,
        "leading_digits": None,
    }
    return SimpleNamespace(**{**fields, **descs})


# Overlapping descriptors, one without lengths of its own, and fixed-line numbers that are also
# mobile: cases the +44 metadata does not have today.
OVERLAPPING = _metadata(
    general_desc=_desc(r"[1-3]\d{1,4}", 2, 3, 4, 5),
    premium_rate=_desc(r"3\d{3}", 4),
    toll_free=_desc(r"3\d{2,3}"),
    voicemail=_desc(r"33\d{1,3}", 3, 5),
    fixed_line=_desc(r"[12]\d{2,4}", 3, 5),
    mobile=_desc(r"2\d{2,4}|1\d{3}"),
)
SAME_FIXED_AND_MOBILE = _metadata(
    **{**vars(OVERLAPPING), "same_mobile_and_fixed_line_pattern": True, "toll_free": None}
)
# Owns numbers starting 20, 21 or 3 even where it finds them invalid, and no others, even those
# it would find valid (personal numbers).
LEADING = _metadata(
    general_desc=_desc(r"\d{3,6}"),
    leading_digits="2[01]|3",
    personal_number=_desc(r"1\d{5}"),
    uan=_desc(r"30\d{3,4}", 5, 6),
    mobile=_desc(r"2\d{5}"),
)
LAST = _metadata(
    general_desc=_desc(r"\d{6}", 6),
    toll_free=_desc(r"1\d{5}"),
    fixed_line=_desc(r"2\d{5}"),
    mobile=_desc(r"2[2-9]\d{4}"),
)


# Each kind OVERLAPPING can decide; LEADING adds UAN.
OVERLAPPING_KINDS = {
    *(KIND.FIXED_LINE, KIND.MOBILE, KIND.FIXED_LINE_OR_MOBILE),
    *(KIND.PREMIUM_RATE, KIND.TOLL_FREE, KIND.VOICEMAIL, UNKNOWN),
}


def _phonenumbers_type(nsn: str, regions: list[SimpleNamespace]) -> int:
    # As phonenumbers' _region_code_for_number_from_list, then number_type
    for metadata in regions:
        if metadata.leading_digits is not None:
            if re.match(metadata.leading_digits, nsn):
                return _number_type_helper(nsn, metadata)
        elif (number_type := _number_type_helper(nsn, metadata)) != UNKNOWN:
            return number_type
    return UNKNOWN


@pytest.mark.parametrize(
    ("regions", "expected_types"),
    [
        ([OVERLAPPING], OVERLAPPING_KINDS),
        (
            [SAME_FIXED_AND_MOBILE],
            {KIND.FIXED_LINE_OR_MOBILE, KIND.PREMIUM_RATE, KIND.VOICEMAIL, UNKNOWN},
        ),
        ([OVERLAPPING, LEADING, LAST], {*OVERLAPPING_KINDS, KIND.UAN}),
    ],
    ids=["overlapping", "same-fixed-and-mobile", "leading-digits"],
)
def test_fast_path_keeps_number_type_precedence_for_any_metadata(
    regions: list[SimpleNamespace], expected_types: set[int]
) -> None:
    # Given every number of up to six digits drawn from 0-3
    numbers = ["".join(p) for k in range(1, 7) for p in itertools.product("0123", repeat=k)]
    classifiers = {k: phone_fast._classifier(k, regions) for k in range(1, 7)}  # type: ignore[arg-type]
    decided = set()
    for nsn in numbers:
        # When the fast path's alternation decides it
        classifier = classifiers[len(nsn)]
        match = classifier[0].fullmatch(nsn) if classifier else None
        fast_type = classifier[1][match.lastindex] if classifier and match else UNKNOWN
        # Then it is the type phonenumbers gives it
        assert fast_type == _phonenumbers_type(nsn, regions), nsn
        decided.add(fast_type)
    # And every kind of decision the metadata allows was made
    assert decided == expected_types


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


@pytest.mark.parametrize("address", ["=cmd@example.com", "+jo@example.com", "-jo@example.com"])
def test_emails_starting_like_a_spreadsheet_formula_are_refused(address: str) -> None:
    # Valid by RFC 5322, but a spreadsheet opening an export would run them as formulas
    with pytest.raises(InvalidInput, match="may not begin with =, \\+, - or @"):
        contacts.normalise_email(address)
    assert contacts.normalise_email("jo+alerts@example.com") == "jo+alerts@example.com"


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
