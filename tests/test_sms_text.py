from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast.errors import InvalidInput
from broadcast.messages.sms_text import (
    GSM_BASIC,
    GSM_EXTENSION,
    analyse,
    check_max_segments,
    downgrade,
    non_gsm_characters,
)

EMOJI = "\U0001f6a8"  # police car light: outside the BMP, a surrogate pair in UTF-16
UCS = "ë"  # in the BMP but not in GSM-7


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("a" * 459, "GSM-7", 3),
        ("a" * 460, "GSM-7", 4),
        (UCS * 70, "UCS-2", 1),
        (UCS * 71, "UCS-2", 2),
        (UCS * 134, "UCS-2", 2),
        (UCS * 135, "UCS-2", 3),
    ],
)
def test_segment_boundaries(text: str, encoding: str, segments: int) -> None:
    result = analyse(text, downgrade=False)

    assert (result.encoding, result.segments, result.characters) == (encoding, segments, len(text))
    assert result.units == segments


def test_empty_text_is_zero_segments() -> None:
    result = analyse("")

    assert (result.encoding, result.segments, result.characters, result.length) == (
        "GSM-7",
        0,
        0,
        0,
    )


def test_extension_characters_count_two_septets() -> None:
    # Given 158 plain characters and one euro sign: 160 septets, still one message
    assert analyse("a" * 158 + "€").segments == 1
    # When one more plain character pushes it to 161 septets
    result = analyse("a" * 159 + "€")
    # Then it is two segments, though only 160 characters
    assert (result.segments, result.characters, result.length) == (2, 160, 161)
    for ch in "^{}\\[~]|€\f":
        assert analyse(ch).length == 2, ch


def test_extension_pair_is_never_split_across_parts() -> None:
    # Given 306 septets that would fill two parts exactly if the escape pair could be split
    text = "a" * 152 + "€" + "a" * 152
    result = analyse(text)
    # Then the euro moves whole to part 2 (152 + 153 + 1) and a third part is needed
    assert (result.length, result.segments) == (306, 3)
    # While the same septets with the pair on a part boundary fit in two
    assert analyse("a" * 151 + "€" + "a" * 153).segments == 2


def test_emoji_counts_two_units_and_surrogate_pair_is_never_split() -> None:
    assert analyse("a" * 68 + EMOJI).segments == 1  # 70 units
    assert analyse("a" * 69 + EMOJI).segments == 2  # 71 units, 70 characters
    result = analyse("a" * 66 + EMOJI + "a" * 66)  # 134 units, but the pair straddles 67
    assert (result.encoding, result.length, result.characters, result.segments) == (
        "UCS-2",
        134,
        133,
        3,
    )
    assert analyse("a" * 65 + EMOJI + "a" * 67).segments == 2


def test_one_non_gsm_character_switches_the_whole_message_to_ucs2() -> None:
    text = "a" * 100 + UCS

    result = analyse(text)

    assert (result.encoding, result.segments) == ("UCS-2", 2)
    assert non_gsm_characters("Zoë and Chloë 🚨") == ["ë", EMOJI]


def test_downgrade_keeps_typographic_text_in_gsm7() -> None:
    # Given an alert pasted from a word processor: smart quotes, en dash, ellipsis, NBSP
    text = "Police\u00a0say \u201cdon\u2019t open the door\u201d \u2013 call 101\u2026"
    # When counted with and without downgrade
    exact = analyse(text, downgrade=False)
    fixed = analyse(text)
    # Then only the downgraded one is GSM-7, and its text is the plain equivalent
    assert exact.encoding == "UCS-2"
    assert fixed.encoding == "GSM-7"
    assert fixed.text == 'Police say "don\'t open the door" - call 101...'


def test_downgrade_leaves_real_letters_and_emoji_alone() -> None:
    assert downgrade("Zoë 🚨 Ça") == "Zoë 🚨 Ça"
    assert downgrade("cafe\u0301") == "café"  # combining accent composed into GSM é
    assert downgrade("line\r\nnext\u200b") == "line\nnext"
    assert analyse("cafe\u0301").encoding == "GSM-7"


def test_check_max_segments_uses_settings_default(monkeypatch: pytest.MonkeyPatch) -> None:
    six = analyse("a" * 153 * 6)
    seven = analyse("a" * (153 * 6 + 1))
    check_max_segments(six)
    with pytest.raises(InvalidInput, match="7 segments.*limit of 6"):
        check_max_segments(seven)

    monkeypatch.setenv("BROADCAST_SMS_MAX_SEGMENTS", "2")
    from broadcast.settings import get_settings

    get_settings.cache_clear()
    with pytest.raises(InvalidInput, match="limit of 2"):
        check_max_segments(analyse("a" * 307))
    check_max_segments(analyse("a" * 307), max_segments=3)


def test_check_max_segments_names_the_ucs2_culprits() -> None:
    with pytest.raises(InvalidInput, match="UCS-2 because of 🚨"):
        check_max_segments(analyse("a" * 100 + EMOJI), max_segments=1)


def test_lone_surrogate_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        analyse("bad \udcff byte")


def _reference_parts(text: str) -> int:
    """Split the way a modem does: encode to units, cut at the limit, keep pairs together."""
    gsm = all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)
    units = [2 if (ch in GSM_EXTENSION if gsm else ord(ch) > 0xFFFF) else 1 for ch in text]
    single, part = (160, 153) if gsm else (70, 67)
    if not units:
        return 0
    if sum(units) <= single:
        return 1
    parts = [[]]
    for size in units:
        if sum(parts[-1]) + size > part:
            parts.append([])
        parts[-1].append(size)
    return len(parts)


alphabet = st.sampled_from(sorted(GSM_BASIC) + sorted(GSM_EXTENSION) + [UCS, EMOJI, "é"])


@given(st.text(alphabet=alphabet, max_size=500))
def test_segments_match_a_reference_splitter(text: str) -> None:
    assert analyse(text, downgrade=False).segments == _reference_parts(text)
