"""Policy differences (compliance.policy_versions.diff) as sentences a compliance reviewer reads:
"Category otp (rule 'otp-by-sms'): SMS removed (was first); email moved from fallback to first."

A route is compared channel by channel: its place in the plan (first, fallback, in parallel,
escalation after a delay unless read) and its order; other effects and thresholds are named in
words. Changes with no better wording keep the diff's own sentence."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from policies import StepMode
from policies.diff import CATEGORY_CHANGED, EFFECT_CHANGED, THRESHOLD_CHANGED, render

CHANNEL_WORDS = {"in_app": "in-app", "push": "push", "sms": "SMS", "email": "email"}
THRESHOLD_WORDS = {
    "presence_window_seconds": ("Online window (seconds since the last heartbeat)", ""),
    "dormant_after_days": ("Dormant after", " days"),
    "churned_after_days": ("Churned after", " days"),
    "in_app_cap_per_day": ("In-app messages per day (cap)", ""),
    "in_app_cap_per_week": ("In-app messages per week (cap)", ""),
    "quiet_hours": ("Quiet hours", ""),
    "sms_max_segments": ("Longest SMS (segments)", ""),
}
EFFECT_WORDS = {"exclude": "excluded channels", "suppress": "suppression", "require": "required channel",
                "require_any": "channels of which one is required", "hold_in_app": "in-app hold",
                "require_confirmation": "confirmation", "cap_in_app": "in-app cap", "cap_messages": "message cap",
                "defer_in_quiet_hours": "channels deferred in quiet hours"}
_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week"}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def channel(name: Any) -> str:
    return CHANNEL_WORDS.get(str(name), str(name))


def duration(raw: Any) -> str:
    """'10m' -> '10 minutes'."""
    m = _DURATION.match(str(raw))
    if not m:
        return str(raw)
    n = int(m.group(1))
    return f"{n} {_UNITS[m.group(2)]}{'' if n == 1 else 's'}"


def _steps(route: Any) -> list[tuple[str, str]]:
    """[(channel, its place in words)], in order."""
    out = []
    for i, entry in enumerate(route if isinstance(route, list) else []):
        entry = entry if isinstance(entry, Mapping) else {"channel": entry}
        mode = entry.get("mode") or StepMode.FALLBACK
        if mode == StepMode.ESCALATE:
            place = f"escalation after {duration(entry.get('after'))} unless {entry.get('unless')}"
        elif mode == StepMode.PARALLEL:
            place = "in parallel"
        else:
            place = StepMode.FIRST.value if i == 0 else StepMode.FALLBACK.value
        out.append((str(entry.get("channel")), place))
    return out


def route_words(before: Any, after: Any) -> list[str]:
    old, new = _steps(before), _steps(after)
    old_at = {ch: (i, place) for i, (ch, place) in enumerate(old)}
    new_at = {ch: (i, place) for i, (ch, place) in enumerate(new)}
    parts = []
    for ch, (_, place) in old_at.items():
        if ch not in new_at:
            parts.append(f"{channel(ch)} removed (was {place})")
    for ch, (i, place) in new_at.items():
        if ch not in old_at:
            parts.append(f"{channel(ch)} added as {place}")
        elif old_at[ch][1] != place:
            parts.append(f"{channel(ch)} moved from {old_at[ch][1]} to {place}")
        elif old_at[ch][0] != i:
            parts.append(f"{channel(ch)} moved from step {old_at[ch][0] + 1} to step {i + 1}")
    return parts


def _value(value: Any) -> str:
    """A channel or a list of channels (or words) in words; anything else as compact YAML."""
    if isinstance(value, str):
        return channel(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(channel(v) for v in value)
    return render(value)


def _effect_words(before: Any, after: Any) -> list[str]:
    before = before if isinstance(before, Mapping) else {}
    after = after if isinstance(after, Mapping) else {}
    parts = []
    if before.get("route") != after.get("route"):
        parts += route_words(before.get("route"), after.get("route")) or ["route order changed"]
    for key in sorted(set(before) | set(after), key=lambda k: (k not in EFFECT_WORDS, k)):
        if key == "route" or before.get(key) == after.get(key):
            continue
        word = EFFECT_WORDS.get(key, key)
        if key not in before:
            parts.append(f"{word} added: {_value(after[key])}")
        elif key not in after:
            parts.append(f"{word} removed (was {_value(before[key])})")
        else:
            parts.append(f"{word} changed from {_value(before[key])} to {_value(after[key])}")
    return parts


def _rule_subject(rule_id: str, rules: Mapping[str, Mapping[str, Any]]) -> str:
    when = (rules.get(rule_id) or {}).get("when")
    if isinstance(when, Mapping) and when.get("fact") == "category" and isinstance(when.get("is"), str):
        return f"Category {when['is']} (rule '{rule_id}')"
    title = (rules.get(rule_id) or {}).get("title")
    return f"Rule '{rule_id}' ({title})" if title else f"Rule '{rule_id}'"


def _threshold_value(name: str, value: Any) -> str:
    if name == "quiet_hours" and isinstance(value, list) and len(value) == 2:
        return f"{value[0]}–{value[1]}"
    return f"{value}{THRESHOLD_WORDS.get(name, ('', ''))[1]}"


def sentences(changes: list[dict[str, Any]], new_document: Mapping[str, Any] | None = None) -> list[str]:
    """One sentence per change, in the diff's order. `new_document` (parsed) names a rule by
    the category it is about."""
    rules = {str(r.get("id")): r for r in (new_document or {}).get("rules") or [] if isinstance(r, Mapping)}
    out = []
    for c in changes:
        if c["kind"] == EFFECT_CHANGED:
            parts = _effect_words(c["before"], c["after"])
            out.append(f"{_rule_subject(c['subject'], rules)}: {'; '.join(parts)}." if parts else c["sentence"])
        elif c["kind"] == THRESHOLD_CHANGED and c["subject"] in THRESHOLD_WORDS:
            name = c["subject"]
            out.append(f"{THRESHOLD_WORDS[name][0]} changed from {_threshold_value(name, c['before'])} to "
                       f"{_threshold_value(name, c['after'])}.")
        elif c["kind"] == CATEGORY_CHANGED and isinstance(c["before"], Mapping) and isinstance(c["after"], Mapping):
            keys = sorted(set(c["before"]) | set(c["after"]))
            flips = [f"{'now' if c['after'].get(k) else 'no longer'} {k}" for k in keys
                     if bool(c["before"].get(k)) != bool(c["after"].get(k))]
            out.append(f"Category {c['subject']}: {', '.join(flips)}." if flips else c["sentence"])
        else:
            out.append(c["sentence"])
    return out


__all__ = ["channel", "duration", "route_words", "sentences"]
