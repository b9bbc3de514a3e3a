"""Human labels for categories and channels, per locale: the optional `labels:` section of a
policy document, which the in-app preference center shows instead of raw ids::

    labels:
      categories:
        security_alert: {en: "Security alerts", ko: "보안 알림"}
      descriptions:                      # optional short text under a category's label
        security_alert: {en: "Sign-ins and password changes", ko: "로그인 및 비밀번호 변경"}
      channels:                          # listed in the order the preference center shows them
        in_app: {en: "In-app", ko: "앱 내 알림"}

Whatever is not labelled falls back to English, then to a humanised id ("winback" ->
"Winback"; channels to their usual English names). Locales are language tags ("en", "ko",
"pt-br"), compared in lower case; a tag no label has falls back to its language ("ko-kr"
-> "ko"), then to English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from channels import DECLARED

from .constants import CHANNELS
from .quoting import quote

DEFAULT_LOCALE = "en"
SECTION_KEYS = ("categories", "descriptions", "channels")
MAX_LABEL_CHARS = 80
MAX_DESCRIPTION_CHARS = 300
MAX_LOCALES = 50
# A language tag as BCP 47 spells its common forms: a 2-3 letter language, then subtags.
LOCALE_TAG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# What a channel is called when the policy does not say.
CHANNEL_NAMES: dict[str, str] = {spec.name: spec.label for spec in DECLARED}


def humanise(name: str) -> str:
    """An id as a reader would write it: "trial_expiry" -> "Trial expiry"."""
    words = re.sub(r"[_\-.]+", " ", name).strip()
    return words[:1].upper() + words[1:] if words else name


def normalise_locale(tag: str) -> str | None:
    """The tag in lower case with '-' separators, or None when it is no language tag."""
    if not isinstance(tag, str) or len(tag) > 35:
        return None
    tag = tag.strip().replace("_", "-").lower()
    return tag if LOCALE_TAG.fullmatch(tag) else None


@dataclass(frozen=True)
class Labels:
    # name -> locale -> text
    categories: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    descriptions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    channels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # every channel, those the section lists first in its order
    channel_order: tuple[str, ...] = CHANNELS
    locales: frozenset[str] = frozenset({DEFAULT_LOCALE})

    def category(self, name: str, locale: str) -> str:
        return _pick(self.categories.get(name), locale) or humanise(name)

    def description(self, name: str, locale: str) -> str:
        return _pick(self.descriptions.get(name), locale) or ""

    def channel(self, name: str, locale: str) -> str:
        return _pick(self.channels.get(name), locale) or CHANNEL_NAMES.get(name) or humanise(name)

    def locale_for(self, wanted: Iterable[str]) -> str:
        """The first wanted locale some label is written in (exactly, or its language),
        else English."""
        for tag in wanted:
            tag = normalise_locale(tag) or ""
            if tag in self.locales:
                return tag
            language = tag.split("-", 1)[0]
            if language in self.locales:
                return language
        return DEFAULT_LOCALE


def _pick(texts: Mapping[str, str] | None, locale: str) -> str | None:
    if not texts:
        return None
    return texts.get(locale) or texts.get(locale.split("-", 1)[0]) or texts.get(DEFAULT_LOCALE)


def parse_labels(raw: Any, categories: Iterable[str], errors: list[str]) -> Labels:
    """The `labels:` section, checked; every problem is appended to `errors` naming its field."""
    if raw is None:
        return Labels()
    if not isinstance(raw, Mapping):
        errors.append("field 'labels': expected a mapping with " + ", ".join(repr(k) for k in SECTION_KEYS))
        return Labels()
    for key in raw:
        if key not in SECTION_KEYS:
            errors.append(f"field 'labels.{key}': unknown field (allowed: {', '.join(SECTION_KEYS)})")
    known_categories = set(categories)
    locales: set[str] = {DEFAULT_LOCALE}
    parsed = {}
    for section, names, limit in (("categories", known_categories, MAX_LABEL_CHARS),
                                  ("descriptions", known_categories, MAX_DESCRIPTION_CHARS),
                                  ("channels", set(CHANNELS), MAX_LABEL_CHARS)):
        parsed[section] = _section(raw.get(section), f"labels.{section}", names, limit, locales, errors)
    if len(locales) > MAX_LOCALES:
        errors.append(f"field 'labels': {len(locales)} locales; at most {MAX_LOCALES}")
    listed = tuple(parsed["channels"])
    return Labels(parsed["categories"], parsed["descriptions"], parsed["channels"],
                  listed + tuple(c for c in CHANNELS if c not in listed), frozenset(locales))


def _section(raw: Any, where: str, names: set[str], limit: int, locales: set[str],
             errors: list[str]) -> dict[str, dict[str, str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.append(f"field '{where}': expected a mapping of name -> {{locale: text}}")
        return {}
    out: dict[str, dict[str, str]] = {}
    for name, texts in raw.items():
        at = f"{where}.{name}"
        if name not in names:
            errors.append(f"field '{at}': unknown {'channel' if where.endswith('channels') else 'category'} "
                          f"{quote(name)}")
            continue
        if not isinstance(texts, Mapping) or not texts:
            errors.append(f"field '{at}': expected a mapping of locale -> text, e.g. {{en: \"…\"}}")
            continue
        out[name] = {}
        for tag, text in texts.items():
            locale = normalise_locale(tag) if isinstance(tag, str) else None
            if locale is None:
                errors.append(f"field '{at}': {quote(tag)} is not a language tag (e.g. en, ko, pt-br)")
                continue
            if not isinstance(text, str) or not text.strip():
                errors.append(f"field '{at}.{tag}': expected a non-empty text")
            elif len(text) > limit:
                errors.append(f"field '{at}.{tag}': {len(text)} characters; at most {limit}")
            elif _CONTROL.search(text):
                errors.append(f"field '{at}.{tag}': control characters are not allowed")
            else:
                out[name][locale] = text.strip()
                locales.add(locale)
    return out
