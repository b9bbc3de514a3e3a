"""Locale tags and the fallback chain a translation is chosen by (`ko-KR` → `ko` → the
template's default). Written by hand: the rule is one loop over BCP 47 subtags, and a
locale library (Babel) would be a large dependency for it."""

from __future__ import annotations

import re

# BCP 47 in the shape people store: language, then subtags (script, region, variant).
_TAG = re.compile(r"^[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8}){0,7}$")
LOCALE_PATTERN = _TAG.pattern
MAX_LOCALE_CHARS = 35


def normalize(tag: str | None) -> str | None:
    """`ko_kr` → `ko-KR`, `zh-hant-tw` → `zh-Hant-TW`; None for anything not a locale tag
    (a stored profile value is not validated, so reading it must never fail)."""
    if not tag or len(tag) > MAX_LOCALE_CHARS:
        return None
    tag = tag.strip().replace("_", "-")
    if not _TAG.match(tag):
        return None
    parts = tag.split("-")
    out = [parts[0].lower()]
    for part in parts[1:]:
        if len(part) == 2 and part.isalpha():
            out.append(part.upper())          # region
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())          # script
        else:
            out.append(part.lower())
    return "-".join(out)


def check(tag: str) -> str:
    """Validator for locale fields: the normalized tag, or ValueError naming the rule."""
    normalized = normalize(tag)
    if normalized is None:
        raise ValueError("validation_error: not a locale tag like 'ko' or 'ko-KR'")
    return normalized


def chain(tag: str | None) -> list[str]:
    """`ko-Kore-KR` → [`ko-Kore-KR`, `ko-Kore`, `ko`]: most specific first."""
    normalized = normalize(tag)
    if normalized is None:
        return []
    parts = normalized.split("-")
    return ["-".join(parts[:n]) for n in range(len(parts), 0, -1)]


def choose(wanted: str | None, available: set[str] | frozenset[str], default: str) -> str:
    """The first of `wanted`'s chain that `available` has, else `default`."""
    for candidate in chain(wanted):
        if candidate in available:
            return candidate
    return default
