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

from .constants import EMAIL, IN_APP, PUSH, SMS, URGENCIES
from .document import Policy
from .facts import MessageFacts, RecipientFacts
from .quoting import quote
from .segments import count_segments, sms_text

_URGENCIES = frozenset(URGENCIES)


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
    c_in_app = get(IN_APP, defaults[IN_APP])
    c_push = get(PUSH, defaults[PUSH])
    c_sms = get(SMS, defaults[SMS])
    c_email = get(EMAIL, defaults[EMAIL])
    c_marketing = get("marketing", defaults["marketing"])
    marketing_ok = c_marketing or not category_facts.get("category.marketing", False)
    push_ok = False
    for device in r.devices:
        if device.active:
            push_ok = True
            break
    sms_ok = bool(r.phone) and r.phone_valid
    email_ok = bool(r.email) and r.email_valid
    # "available" = what the engine's safety floor enforces whatever the rules say.
    a_in_app = c_in_app and marketing_ok  # the inbox exists for every user id
    a_push = push_ok and c_push and marketing_ok
    a_sms = sms_ok and c_sms and marketing_ok
    a_email = email_ok and c_email and marketing_ok

    # A locked category ignores preferences: security, legal and codes always reach the user.
    prefs = r.preferences.get(category) if r.preferences else None
    if prefs and not category_facts.get("category.locked", False):
        p_in_app, p_push = prefs.get(IN_APP, True), prefs.get(PUSH, True)
        p_sms, p_email = prefs.get(SMS, True), prefs.get(EMAIL, True)
    else:
        p_in_app = p_push = p_sms = p_email = True

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
        "consent.in_app": c_in_app,
        "consent.push": c_push,
        "consent.sms": c_sms,
        "consent.email": c_email,
        "consent.marketing": c_marketing,
        "reachable.in_app": True,
        "reachable.push": push_ok,
        "reachable.sms": sms_ok,
        "reachable.email": email_ok,
        "available.in_app": a_in_app,
        "available.push": a_push,
        "available.sms": a_sms,
        "available.email": a_email,
        "preference.in_app": p_in_app,
        "preference.push": p_push,
        "preference.sms": p_sms,
        "preference.email": p_email,
        "available": [ch for ch, ok in ((IN_APP, a_in_app), (PUSH, a_push), (EMAIL, a_email), (SMS, a_sms))
                      if ok],
    }
    return facts, quiet_end
