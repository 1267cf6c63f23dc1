"""Validation and normalisation of contact points, postcodes, areas and topics.

Every function returns the normalised form or raises InvalidInput with a message fit to show the
person who typed the value. Results are cached because imports often repeat the same values.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import NumberParseException, PhoneNumberType

from broadcast.csv_cells import FORMULA_STARTS
from broadcast.errors import InvalidInput
from broadcast.registrants.phone_fast import classify_uk

# UK numbers may resolve to the Crown Dependencies' regions (GG, IM, JE); all share +44.
UK_COUNTRY_CODE = 44
UK_REGIONS = {"GB", "GG", "IM", "JE"}
MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
VOICE_TYPES = MOBILE_TYPES | {
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
}

# The GOV.UK / Royal Mail shape: outward code (area, district) then inward code (sector, unit).
POSTCODE_RE = re.compile(
    r"^(?P<outward>GIR|[A-PR-UWYZ](?:[0-9]{1,2}|[A-HK-Y][0-9][0-9ABEHMNPRV-Y]?|[0-9][A-HJKPS-UW]"
    r"|[A-HK-Y][0-9]))(?P<inward>[0-9][ABD-HJLNP-UW-Z]{2})$"
)
DISTRICT_RE = re.compile(r"^[A-PR-UWYZ][A-HK-Y]?[0-9][0-9A-Z]?$")
SECTOR_RE = re.compile(r"^([A-PR-UWYZ][A-HK-Y]?[0-9][0-9A-Z]?) ?([0-9])$")
NAMED_AREA_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


def _parse_phone(raw: str, region: str) -> tuple[str, int]:
    text = raw.strip()
    if not text:
        raise InvalidInput("phone number is empty", field="phone")
    fast = classify_uk(text) if region in UK_REGIONS else None
    if fast is not None:
        if fast[1] == PhoneNumberType.UNKNOWN:
            raise InvalidInput(f"'{raw}' is not a valid UK phone number", field="phone")
        return fast
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidInput(f"'{raw}' is not a phone number ({exc._msg})", field="phone") from None
    if number.country_code != UK_COUNTRY_CODE:
        raise InvalidInput(f"'{raw}' is not a UK (+44) number", field="phone")
    number_type = phonenumbers.number_type(number)
    if number_type == PhoneNumberType.UNKNOWN:
        raise InvalidInput(f"'{raw}' is not a valid UK phone number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number_type


def normalise_phone(raw: str, region: str = "GB") -> str:
    """Any valid UK number, of any kind, in E.164: for finding who owns a number (an inbound
    SMS's sender, an operator's lookup), where whether it can take SMS or calls does not
    matter."""
    return _parse_phone(raw, region)[0]


def normalise_mobile(raw: str, region: str = "GB") -> str:
    """A mobile number for SMS, in E.164; a landline or any other kind is refused."""
    e164, number_type = _parse_phone(raw, region)
    if number_type not in MOBILE_TYPES:
        raise InvalidInput(
            f"'{raw}' is not a mobile number, so it cannot receive SMS", field="mobile"
        )
    return e164


def normalise_voice_number(raw: str, region: str = "GB") -> str:
    """Any number that can take a call (landline or mobile), in E.164."""
    e164, number_type = _parse_phone(raw, region)
    if number_type not in VOICE_TYPES:
        raise InvalidInput(f"'{raw}' cannot receive voice calls", field="landline")
    return e164


# Plain ASCII addresses, the vast majority, in a shape email-validator always accepts unchanged
# (tests check this): they skip its ~20 µs of Unicode and IDNA checks. Everything else goes to it.
_PLAIN_EMAIL = re.compile(
    r"^(?=.{6,254}$)(?=[^@]{1,64}@)[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@(?:(?!-)(?!..--)[a-z0-9-]{1,63}(?<!-)\.)+(?P<tld>[a-z]{2,63})$"
)


def is_plain_email(lowered: str) -> bool:
    match = _PLAIN_EMAIL.match(lowered)
    return match is not None and match["tld"] not in SPECIAL_USE_DOMAIN_NAMES


@lru_cache(maxsize=65536)
def normalise_email(raw: str) -> str:
    """Syntax-checked (no DNS look-up) and lower-cased, so one mailbox has one spelling."""
    text = raw.strip()
    if not text:
        raise InvalidInput("email address is empty", field="email")
    if text.startswith(FORMULA_STARTS):
        # Valid by RFC 5322 but rare, and a spreadsheet opening an export would run it.
        raise InvalidInput(
            f"'{raw}' is not accepted: an email address may not begin with =, +, - or @ "
            "(spreadsheets read that as a formula)",
            field="email",
        )
    lowered = text.lower()
    if is_plain_email(lowered):
        return lowered
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput(f"'{raw}' is not a valid email address: {exc}", field="email") from None
    return result.normalized.lower()


@lru_cache(maxsize=65536)
def normalise_postcode(raw: str) -> str:
    """A full UK postcode in its standard written form, e.g. 'SW1A 1AA'."""
    compact = "".join(raw.split()).upper()  # as re.sub(r"\s+", "", raw): same whitespace set
    match = POSTCODE_RE.match(compact)
    if not match:
        raise InvalidInput(f"'{raw}' is not a valid UK postcode", field="postcode")
    return f"{match['outward']} {match['inward']}"


def normalise_area(raw: str, named_areas: frozenset[str] = frozenset()) -> str:
    """A postcode district ('SW1A'), sector ('SW1A 1') or a force-defined named area (slug)."""
    text = " ".join(raw.split())
    upper = text.upper()
    if DISTRICT_RE.match(upper):
        return upper
    sector = SECTOR_RE.match(upper)
    if sector:
        return f"{sector[1]} {sector[2]}"
    slug = text.lower().replace(" ", "-")
    if NAMED_AREA_RE.match(slug) and (not named_areas or slug in named_areas):
        return slug
    if named_areas:
        known = ", ".join(sorted(named_areas))
        raise InvalidInput(
            f"'{raw}' is not a postcode district/sector or one of: {known}", field="areas"
        )
    raise InvalidInput(f"'{raw}' is not a postcode district, sector or area name", field="areas")


def topic_slug(raw: str) -> str:
    """A topic as written ("Anti social behaviour") in the form topics are kept in."""
    return raw.strip().lower().replace(" ", "-")


def normalise_topic(raw: str, topics: frozenset[str]) -> str:
    slug = topic_slug(raw)
    # The set look-up first: it is cheaper than the regex and usually decides.
    if (slug in topics or not topics) and TOPIC_RE.match(slug):
        return slug
    known = ", ".join(sorted(topics))
    raise InvalidInput(f"'{raw}' is not a known topic (known: {known})", field="topics")


def split_list(raw: str | None) -> list[str]:
    """Split 'a;b, c' into ['a', 'b', 'c']; the CSV format separates lists with ';' or ','."""
    if not raw:
        return []
    # str methods rather than re.split: about twice as fast on these short values.
    if "," in raw or "|" in raw:
        raw = raw.replace(",", ";").replace("|", ";")
    return [stripped for part in raw.split(";") if (stripped := part.strip())]
