"""Derived facts: everything a condition can test, computed from the inputs and ``now``.

This is the only place ``now`` enters a decision, which keeps the property "time only matters
through presence, lifecycle, quiet hours and expiry" easy to check.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from channels import DECLARED

from .constants import CHANNELS, MARKETING, URGENCIES
from .document import Policy
from .facts import MessageFacts, RecipientFacts
from .quoting import quote
from .segments import count_segments, sms_text

_URGENCIES = frozenset(URGENCIES)
# Per channel spec: its fact keys, built once (f-strings in the hot path cost more than lookups).
_CHANNEL_KEYS = tuple((spec, f"consent.{spec.name}", f"reachable.{spec.name}", f"available.{spec.name}",
                       f"preference.{spec.name}") for spec in DECLARED)
_AVAILABLE_KEYS = tuple((ch, f"available.{ch}") for ch in CHANNELS)  # the "available" list's order
_NO_PREFERENCES: dict[str, bool] = {}


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    # An unknown zone name in a profile must not fail the send: fall back to UTC (documented).
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@lru_cache(maxsize=256)
def _window(window: tuple[str, str]) -> tuple[int, int] | None:
    """("22:00", "08:00") -> (1320, 480) minutes; None when a profile holds something unreadable."""
    try:
        parsed = [_HHMM.match(part) for part in window]
    except TypeError:
        return None
    if len(parsed) != 2 or not all(parsed):
        return None
    (h1, m1), (h2, m2) = (m.groups() for m in parsed)  # type: ignore[union-attr]
    return int(h1) * 60 + int(m1), int(h2) * 60 + int(m2)


def quiet_hours_state(now: datetime, tz: str, start: int, end: int) -> tuple[bool, datetime | None]:
    """(inside quiet hours, when they end in UTC) for a window given in minutes after midnight,
    local time. The window may wrap midnight (22:00-08:00); start == end means no quiet hours."""
    if start == end:
        return False, None
    zone = _zone(tz)
    local = now.astimezone(zone)
    t = local.hour * 60 + local.minute
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return False, None
    # The evening part of a wrapping window ends tomorrow.
    return True, _quiet_end(local.year, local.month, local.day, start > end and t >= start, end, tz)


@lru_cache(maxsize=4096)
def _quiet_end(year: int, month: int, day: int, next_day: bool, end: int, tz: str) -> datetime:
    """UTC instant of local `end` minutes on that day (or the next). Cached: per zone and day
    there is only one answer, and the datetime arithmetic is slow compared to a lookup."""
    end_day = date(year, month, day) + timedelta(days=1 if next_day else 0)
    # Wall-clock end in the recipient's zone; zoneinfo resolves DST gaps/overlaps (fold=0).
    end_local = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=_zone(tz))
    return end_local.astimezone(UTC)


def cap_windows(now: datetime, tz: str) -> tuple[datetime, datetime, datetime, datetime]:
    """(start of the local day, start of the ISO week, start of the next day, start of the
    next week), in UTC, for the recipient's timezone: the windows of a cross-channel cap."""
    local = now.astimezone(_zone(tz))
    return _cap_windows(local.year, local.month, local.day, tz)


@lru_cache(maxsize=4096)
def _cap_windows(year: int, month: int, day: int, tz: str) -> tuple[datetime, datetime, datetime, datetime]:
    """cap_windows for a local day: one answer per zone and day, so cached (a replay of a
    week's history asks for the same few days over and over)."""
    today = date(year, month, day)
    monday = today - timedelta(days=today.weekday())

    def start(day: date) -> datetime:
        return datetime.combine(day, time(0, 0), tzinfo=_zone(tz)).astimezone(UTC)

    return (start(today), start(monday), start(today + timedelta(days=1)), start(monday + timedelta(days=7)))


@lru_cache(maxsize=4096)
def _iso(value: datetime) -> str:
    return value.isoformat()


def derive(policy: Policy, message: MessageFacts, r: RecipientFacts, now: datetime,
           ) -> tuple[dict[str, Any], datetime | None]:
    """(facts, end of quiet hours). The facts dict is what conditions read (keys are the fact
    names of the condition language) and, JSON-safe as it is, what the plan records.

    Written straight-line on purpose: it runs once per decision and dominates its cost.
    """
    category = message.category
    category_facts = policy.category_facts.get(category)
    if category_facts is None:
        raise ValueError(f"unknown category {quote(category)}")
    if message.urgency not in _URGENCIES:
        raise ValueError(f"unknown urgency {quote(message.urgency)} (allowed: {', '.join(URGENCIES)})")
    presence_window, dormant_after, churned_after, default_window = policy.timing

    hb = r.last_heartbeat_at
    online = r.connected or (hb is not None and now - hb <= presence_window)
    window = (r.quiet_hours and _window(tuple(r.quiet_hours))) or default_window
    in_quiet, quiet_end = quiet_hours_state(now, r.timezone, *window)
    last_active = r.last_active_at
    if last_active is None:
        lifecycle = "unknown"
    else:
        idle = now - last_active
        lifecycle = "active" if idle < dormant_after else "dormant" if idle < churned_after else "churned"
    title, body = message.title, message.body
    text = message.sms_text
    seg = count_segments(sms_text(title, body) if text is None else text)
    content_bytes = message.content_bytes or len(title.encode()) + len(body.encode())
    expires_at = message.expires_at

    get = r.consents.get
    defaults = policy.consent_defaults
    c_marketing = get(MARKETING, defaults[MARKETING])
    marketing_ok = c_marketing or not category_facts.get("category.marketing", False)
    # "available" = what the engine's safety floor enforces whatever the rules say. A locked
    # category ignores preferences: security, legal and codes always reach the user.
    prefs = r.preferences.get(category) if r.preferences else None
    if not prefs or category_facts.get("category.locked", False):
        prefs = _NO_PREFERENCES
    consent, reachable, available, preference = {}, {}, {}, {}
    for spec, consent_key, reachable_key, available_key, preference_key in _CHANNEL_KEYS:
        name = spec.name
        c = consent[consent_key] = get(name, defaults[name])
        ok = reachable[reachable_key] = spec.reachable(r)
        available[available_key] = c and ok and marketing_ok
        preference[preference_key] = prefs.get(name, True)
    consent[f"consent.{MARKETING}"] = c_marketing

    facts: dict[str, Any] = {
        "category": category,
        "urgency": message.urgency,
        "presence": "online" if online else "offline",
        "lifecycle": lifecycle,
        "in_quiet_hours": in_quiet,
        "quiet_hours_end": _iso(quiet_end) if quiet_end is not None else None,
        "expired": expires_at is not None and expires_at <= now,
        "sms_encoding": seg.encoding,
        "sms_segments": seg.segments,
        "content_bytes": content_bytes,
        "has_rich_media": message.has_rich_media,
        "in_app_count_day": r.in_app_count_day,
        "in_app_count_week": r.in_app_count_week,
        "message_count_day": r.message_count_day,
        "message_count_week": r.message_count_week,
        **category_facts,
        **consent,
        **reachable,
        **available,
        **preference,
        "available": [ch for ch, key in _AVAILABLE_KEYS if available[key]],
    }
    return facts, quiet_end
