"""SMS text rules: GSM-7 / UCS-2 detection, exact segment counting and typographic downgrade.

A segment is what a network bills as one message. GSM 03.38 7-bit text fits 160 septets in a
single message, or 153 per part once a concatenation header is needed; characters from the
extension table take two septets (escape + char) and a part never ends between the two. Anything
outside GSM-7 switches the whole message to UCS-2: 70 UTF-16 code units single, 67 per part, and
a character outside the BMP (most emoji) takes a surrogate pair that is never split across parts.

`characters` counts code points: what a person sees for GSM-7 text and for nearly all UCS-2 text
(combined emoji sequences such as flags count as more than one).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from broadcast.errors import InvalidInput

GSM7: Final = "GSM-7"
UCS2: Final = "UCS-2"
Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x1B, the escape, is left out: it is not text).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each of these is sent as ESC + char, two septets.
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_ALL = GSM_BASIC | GSM_EXTENSION

GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Only replacements a reader would never notice: the same mark in its plain form.
_DOWNGRADE = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark / typographic apostrophe
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent used as an apostrophe
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2022": "-",  # bullet, as a list marker
    "\u2026": "...",  # horizontal ellipsis
    "\u00a0": " ",  # no-break space
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2007": " ",  # figure space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\t": " ",  # tab: not in GSM-7
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\u00ad": "",  # soft hyphen
    "\ufeff": "",  # byte-order mark / zero-width no-break space
}
_DOWNGRADE_TABLE = str.maketrans(_DOWNGRADE)


@dataclass(frozen=True, slots=True)
class SmsAnalysis:
    """How an SMS body will be sent and billed.

    Parameters:
        text: the body as it will be sent (after downgrade, when asked for).
        encoding: "GSM-7" or "UCS-2".
        segments: parts the network bills (0 for empty text).
        characters: code points in `text`.
        length: septets (GSM-7) or UTF-16 code units (UCS-2).
    """

    text: str
    encoding: Encoding
    segments: int
    characters: int
    length: int

    @property
    def units(self) -> int:
        """Billable units: one per segment."""
        return self.segments


def downgrade(text: str) -> str:
    """Replace typographic characters (smart quotes, dashes, ellipsis, odd spaces) with GSM ones.

    Text is NFC-normalised first, so an accent typed as a combining mark (e + ´) becomes the single
    GSM character é rather than forcing UCS-2.
    """
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = text.translate(_DOWNGRADE_TABLE)
    return text.replace("\r\n", "\n") if "\r" in text else text


_downgrade = downgrade  # analyse() takes a keyword of the same name


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters that force UCS-2, in order of first appearance."""
    return list(dict.fromkeys(ch for ch in text if ch not in GSM_ALL))


def analyse(text: str, *, downgrade: bool = True) -> SmsAnalysis:
    """Count encoding, segments and characters of an SMS body exactly.

    Raises:
        InvalidInput: the text holds a lone surrogate (not valid Unicode, cannot be sent).
    """
    if downgrade:
        text = _downgrade(text)
    if GSM_ALL.issuperset(text):
        extended = sum(text.count(ch) for ch in GSM_EXTENSION) if _has_extension(text) else 0
        length = len(text) + extended
        segments = _segments(text, length, GSM_SINGLE, GSM_PART, 1 if extended else 0, _gsm_cost)
        return SmsAnalysis(text, GSM7, segments, len(text), length)
    _refuse_lone_surrogates(text)
    astral = sum(1 for ch in text if ch > "\uffff") if max(text) > "\uffff" else 0
    length = len(text) + astral
    segments = _segments(text, length, UCS2_SINGLE, UCS2_PART, astral, _utf16_cost)
    return SmsAnalysis(text, UCS2, segments, len(text), length)


def check_max_segments(analysis: SmsAnalysis, max_segments: int | None = None) -> None:
    """Refuse an SMS longer than `max_segments` (default: settings `sms_max_segments`).

    Raises:
        InvalidInput: the message needs more segments than allowed.
    """
    if max_segments is None:
        from broadcast.settings import get_settings

        max_segments = get_settings().sms_max_segments
    if analysis.segments > max_segments:
        per = GSM_PART if analysis.encoding == GSM7 else UCS2_PART
        hint = ""
        if analysis.encoding == UCS2:
            shown = " ".join(non_gsm_characters(analysis.text)[:5])
            hint = f"; it is sent as UCS-2 because of {shown}"
        raise InvalidInput(
            f"SMS is {analysis.segments} segments ({analysis.length} {analysis.encoding} units, "
            f"{per} per segment), over the limit of {max_segments}{hint}",
            field="sms",
        )


def _has_extension(text: str) -> bool:
    return not GSM_BASIC.issuperset(text)


def _gsm_cost(ch: str) -> int:
    return 2 if ch in GSM_EXTENSION else 1


def _utf16_cost(ch: str) -> int:
    return 2 if ch > "\uffff" else 1


def _segments(
    text: str, length: int, single: int, part: int, doubles: int, cost: Callable[[str], int]
) -> int:
    """Parts needed; only text with two-unit characters needs the slow walk for split rules."""
    if length == 0:
        return 0
    if length <= single:
        return 1
    if not doubles:
        return -(-length // part)
    parts, used = 1, 0
    for ch in text:
        size = cost(ch)
        if used + size > part:  # a two-unit character never straddles two parts
            parts, used = parts + 1, 0
        used += size
    return parts


def _refuse_lone_surrogates(text: str) -> None:
    try:
        text.encode("utf-16-le")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"the text is not valid Unicode (stray code {text[exc.start]!r} at position "
            f"{exc.start + 1}); check how it was typed or pasted",
            field="sms",
        ) from exc
