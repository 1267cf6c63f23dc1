"""A fast path for classifying UK (+44) numbers written in the usual ways.

phonenumbers is the authority, but parse() and number_type() cost about 30 µs a number, mostly
re-looking-up cached regexes; a 100,000-row import validates up to 200,000 numbers. This module
applies the same metadata (phonenumbers' own patterns) in the same order as phonenumbers'
number_type, for the +44 regions only. Anything it does not recognise falls back to
phonenumbers, and tests check that both agree on large random samples.

The whole decision for a number of a given length is one compiled alternation: the engine tries
the alternatives in order and takes the first that matches the whole number, which is the
precedence number_type uses, so a number costs one regex call rather than a dozen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberType
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

UK_COUNTRY_CODE = 44
# Clean national ("07911 123456") or international ("+44 7911 123456", "0044...") writing.
# ASCII only: other scripts' digits and spaces are left to phonenumbers, which converts them.
_CLEAN = re.compile(r"^(?:(?:\+|00)44\s*(?:\(0\))?|0)([1-9][\d\s\-]{6,14})$", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-]")
# _CLEAN's group is at most 15 characters, so no national number it yields is longer.
_MAX_LENGTH = 15

# The order in which phonenumbers' _number_type_helper tries the descriptors.
_ORDERED_TYPES = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
# Ends a branch whose outcome is already decided, so the engine cannot fall through to a later one.
_REST = r"[\s\S]*"
# A compiled alternation and, for each of its group indexes, the number type it decides.
_Classifier = tuple[re.Pattern[str], tuple[int, ...]]


class _Groups:
    """Marks alternatives with empty named groups and remembers the number type each stands for.

    The mark goes after the pattern, so an alternative starts with its first digit, which the
    engine rejects in one step; being the last group closed, it is the match's lastindex."""

    def __init__(self) -> None:
        self.types: dict[str, int] = {}

    def add(self, source: str, number_type: int) -> str:
        name = f"t{len(self.types)}"
        self.types[name] = number_type
        return f"{source}(?P<{name}>)"


def _pattern_for(
    desc: PhoneNumberDesc | None, general_lengths: tuple[int, ...], length: int
) -> str | None:
    """The descriptor's pattern if it can match a number of this length, as _is_number_matching_desc
    decides (its possible lengths, or the general ones when it has none)."""
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    lengths = tuple(getattr(desc, "possible_length", None) or ()) or general_lengths
    if lengths and length not in lengths:
        return None
    return f"(?:{pattern})"


def _region_source(metadata: PhoneMetadata, length: int, groups: _Groups) -> str | None:
    """Matches a number of this length exactly when _number_type_helper gives it a type other
    than UNKNOWN in this region; the group that matches names the type."""
    general_lengths = tuple(getattr(metadata.general_desc, "possible_length", None) or ())
    general = _pattern_for(metadata.general_desc, general_lengths, length)
    if general is None:
        return None
    branches = []
    for attribute, number_type in _ORDERED_TYPES:
        pattern = _pattern_for(getattr(metadata, attribute), general_lengths, length)
        if pattern:
            branches.append(groups.add(pattern, number_type))
    fixed = _pattern_for(metadata.fixed_line, general_lengths, length)
    mobile = _pattern_for(metadata.mobile, general_lengths, length)
    if metadata.same_mobile_and_fixed_line_pattern:
        if fixed:
            branches.append(groups.add(fixed, PhoneNumberType.FIXED_LINE_OR_MOBILE))
    else:
        if fixed:
            # A fixed-line number is FIXED_LINE_OR_MOBILE if the mobile pattern matches it too.
            inner = [groups.add(_REST, PhoneNumberType.FIXED_LINE)]
            if mobile:
                inner.insert(0, groups.add(mobile, PhoneNumberType.FIXED_LINE_OR_MOBILE))
            branches.append(rf"(?={fixed}\Z)(?:{'|'.join(inner)})")
        if mobile:
            branches.append(groups.add(mobile, PhoneNumberType.MOBILE))
    if not branches:
        return None
    return rf"(?={general}\Z)(?:{'|'.join(branches)})"


def _classifier(length: int, regions: Sequence[PhoneMetadata]) -> _Classifier | None:
    """The alternation for numbers of this length and the type for each group index; None when
    every number of this length is UNKNOWN."""
    groups = _Groups()
    branches = []
    # As _region_code_for_number_from_list: the first region whose leading digits match, valid or
    # not, or in which the number is valid.
    for metadata in regions:
        own = _region_source(metadata, length, groups)
        if metadata.leading_digits is not None:
            unknown = groups.add(_REST, PhoneNumberType.UNKNOWN)
            inner = f"{own}|{unknown}" if own else unknown
            branches.append(f"(?=(?:{metadata.leading_digits}))(?:{inner})")
        elif own:
            branches.append(own)
    if all(t == PhoneNumberType.UNKNOWN for t in groups.types.values()):
        return None
    pattern = re.compile("|".join(f"(?:{b})" for b in branches))
    # phonenumbers' patterns have no groups of their own, so the marks are all of them.
    assert pattern.groups == len(groups.types)
    types = [PhoneNumberType.UNKNOWN] * (pattern.groups + 1)
    for name, index in pattern.groupindex.items():
        types[index] = groups.types[name]
    return pattern, tuple(types)


@lru_cache(maxsize=1)
def _classifiers() -> tuple[_Classifier | None, ...]:
    regions = []
    for code in COUNTRY_CODE_TO_REGION_CODE[UK_COUNTRY_CODE]:
        metadata = PhoneMetadata.metadata_for_region(code)
        assert metadata is not None  # phonenumbers has metadata for every region it maps +44 to
        regions.append(metadata)
    return tuple(_classifier(length, regions) for length in range(_MAX_LENGTH + 1))


def classify_uk(raw: str) -> tuple[str, int] | None:
    """(E.164, number type) for a cleanly written +44 number; None when phonenumbers must decide."""
    match = _CLEAN.match(raw.strip())
    if match is None:
        return None
    nsn = match[1]
    if not nsn.isdecimal():  # only then can it hold spaces or hyphens
        nsn = _SEPARATORS.sub("", nsn)
    classifier = _classifiers()[len(nsn)]
    if classifier is None:
        return f"+44{nsn}", PhoneNumberType.UNKNOWN
    pattern, types = classifier
    decided = pattern.fullmatch(nsn)
    # Every branch of the pattern is a group, so a match always has a last group.
    number_type = types[decided.lastindex or 0] if decided else PhoneNumberType.UNKNOWN
    return f"+44{nsn}", number_type
