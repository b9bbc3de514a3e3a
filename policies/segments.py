"""SMS segment counting (3GPP TS 23.038 alphabets, TS 23.040 concatenation).

- GSM-7: 160 septets in a single message, 153 per part once concatenated (the 7-septet UDH
  takes the rest). Characters of the extension table (``{ } [ ] ~ \\ | ^ €`` and form feed)
  are sent as ESC + char, i.e. 2 septets, and a part never ends between ESC and its char.
- UCS-2 (anything outside GSM-7, e.g. Korean or emoji): 70 UTF-16 code units single, 67 per
  part. A character outside the BMP (most emoji) is a surrogate pair, 2 units, never split.

Empty text is 0 segments: there is nothing to send. Callers that must send something anyway
treat it as 1.

The GSM alphabet is taken from the ``gsm0338`` package's tables rather than copied here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from gsm0338.charset import BASIC_CHARACTER_SET, BASIC_CHARACTER_SET_EXTENSION

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE = 160
GSM7_PART = 153
UCS2_SINGLE = 70
UCS2_PART = 67


def _lookup(name: str) -> str:
    # The tables use Unicode character names; a few control characters have no lookup name.
    fallback = {"LINE FEED": "\n", "FORM FEED": "\f", "CARRIAGE RETURN": "\r", "ESCAPE": "\x1b"}
    return fallback[name] if name in fallback else unicodedata.lookup(name)


# ESC itself is not a character a sender can put in a body: it would be read as a prefix.
_GSM_BASIC: frozenset[str] = frozenset(
    _lookup(n) for code, n in BASIC_CHARACTER_SET.items() if code != 0x1B
)
_GSM_EXTENDED: frozenset[str] = frozenset(_lookup(n) for n in BASIC_CHARACTER_SET_EXTENSION.values())


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    encoding: str  # "GSM-7" | "UCS-2"
    segments: int
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2


def is_gsm7(text: str) -> bool:
    return all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text)


def _pack(unit_sizes: list[int], part_size: int) -> int:
    """Number of parts when units are packed greedily and no character is split."""
    parts, used = 1, 0
    for size in unit_sizes:
        if used + size > part_size:
            parts += 1
            used = 0
        used += size
    return parts


@lru_cache(maxsize=4096)
def count_segments(text: str) -> SegmentInfo:
    # Cached: bodies come from templates, so the same text is counted over and over.
    if text == "":
        return SegmentInfo(GSM7, 0, 0)
    if is_gsm7(text):
        sizes = [2 if ch in _GSM_EXTENDED and ch not in _GSM_BASIC else 1 for ch in text]
        single, part = GSM7_SINGLE, GSM7_PART
        encoding = GSM7
    else:
        sizes = [2 if ord(ch) > 0xFFFF else 1 for ch in text]
        single, part = UCS2_SINGLE, UCS2_PART
        encoding = UCS2
    units = sum(sizes)
    if units <= single:
        return SegmentInfo(encoding, 1, units)
    return SegmentInfo(encoding, _pack(sizes, part), units)


def sms_text(title: str, body: str) -> str:
    """The text an SMS would carry: title and body on separate lines, whichever exist."""
    if title and body:
        return f"{title}\n{body}"
    return title or body
