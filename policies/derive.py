"""Derived facts: everything a condition can test, computed from the inputs and ``now``.

This is the only place ``now`` enters a decision, which keeps the property "time only matters
through presence, lifecycle, quiet hours and expiry" easy to check.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .constants import CHANNELS, CONSENT_KEYS, EMAIL, IN_APP, PUSH, SMS
from .document import Policy
from .facts import MessageFacts, RecipientFacts
from .segments import count_segments, sms_text

_DAY = 86400


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    # An unknown zone name in a profile must not fail the send: fall back to UTC (documented).
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@lru_cache(maxsize=256)
def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def quiet_hours_state(now: datetime, tz: str, window: tuple[str, str]) -> tuple[bool, datetime | None]:
    """(inside quiet hours, when they end in UTC). The window may wrap midnight (22:00-08:00)."""
    start, end = _minutes(window[0]), _minutes(window[1])
    if start == end:
        return False, None  # an empty window: no quiet hours
    zone = _zone(tz)
    local = now.astimezone(zone)
    t = local.hour * 60 + local.minute
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return False, None
    end_day = local.date()
    if start > end and t >= start:
        end_day += timedelta(days=1)  # evening part of a wrapping window ends tomorrow
    # Wall-clock end in the recipient's zone; zoneinfo resolves DST gaps/overlaps (fold=0).
    end_local = datetime.combine(end_day, time(end // 60, end % 60), tzinfo=zone)
    return True, end_local.astimezone(UTC)


def lifecycle(last_active_at: datetime | None, now: datetime, dormant_days: int, churned_days: int) -> str:
    if last_active_at is None:
        return "unknown"
    idle = (now - last_active_at).total_seconds()
    if idle < dormant_days * _DAY:
        return "active"
    if idle < churned_days * _DAY:
        return "dormant"
    return "churned"


# Fact keys built once: f-strings in the hot path cost more than the lookups themselves.
_CONSENT_KEYS = {k: f"consent.{k}" for k in CONSENT_KEYS}
_REACHABLE_KEYS = {ch: f"reachable.{ch}" for ch in CHANNELS}
_AVAILABLE_KEYS = {ch: f"available.{ch}" for ch in CHANNELS}


def derive(policy: Policy, message: MessageFacts, r: RecipientFacts, now: datetime) -> dict[str, Any]:
    """The fact dictionary conditions read. Keys are the fact names of the condition language."""
    th = policy.thresholds
    category = message.category
    if category not in policy.categories:
        raise ValueError(f"unknown category {category!r}")

    hb = r.last_heartbeat_at
    online = r.connected or (hb is not None and (now - hb).total_seconds() <= th["presence_window_seconds"])
    in_quiet, quiet_end = quiet_hours_state(now, r.timezone, r.quiet_hours or th["quiet_hours"])
    seg = count_segments(sms_text(message.title, message.body))
    content_bytes = message.content_bytes or len(message.title.encode()) + len(message.body.encode())
    expires_at = message.expires_at

    facts: dict[str, Any] = {
        "category": category,
        "urgency": message.urgency,
        "presence": "online" if online else "offline",
        "lifecycle": lifecycle(r.last_active_at, now, th["dormant_after_days"], th["churned_after_days"]),
        "in_quiet_hours": in_quiet,
        "quiet_hours_end": quiet_end,
        "expired": expires_at is not None and expires_at <= now,
        "sms_encoding": seg.encoding,
        "sms_segments": seg.segments,
        "content_bytes": content_bytes,
        "has_rich_media": message.has_rich_media,
        "in_app_count_day": r.in_app_count_day,
        "in_app_count_week": r.in_app_count_week,
    }
    category_facts = policy.category_facts[category]
    facts.update(category_facts)

    consents = r.consents
    consent = {}
    for key, default in policy.consent_defaults.items():
        consent[key] = value = consents.get(key, default)
        facts[_CONSENT_KEYS[key]] = value
    reachable = (
        (IN_APP, True),  # the inbox exists for every user id
        (PUSH, any(d.active for d in r.devices)),
        (SMS, bool(r.phone) and r.phone_valid),
        (EMAIL, bool(r.email) and r.email_valid),
    )
    marketing_ok = consent["marketing"] or not category_facts.get("category.marketing", False)
    for ch, ok in reachable:
        facts[_REACHABLE_KEYS[ch]] = ok
        # "available" = what the engine's safety floor enforces whatever the rules say.
        facts[_AVAILABLE_KEYS[ch]] = ok and consent[ch] and marketing_ok
    return facts
