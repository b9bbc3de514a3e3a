"""A policy as a reviewer reads it: what each category does for each kind of recipient, in
words, and every rule's condition and effect as sentences.

- ``reading_table(policy, today)``: per category, the recipient states the policy's rules tell
  apart (in the app, away, inactive, no push device, quiet hours, ... chosen from the facts its
  conditions name), each decided by ``policies.decide`` on fixed example facts, and the plan in
  words ("in-app first; if not read within 10 minutes, push; then email as fallback if push
  fails"). States with the same outcome share a row.
- ``condition_words(when, thresholds)`` / ``effect_words(then)``: a rule's `when` / `then` as
  sentences instead of JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import policies
from policies import Device, MessageFacts, Policy, RecipientFacts, StepMode
from policies.effects import parse_duration
from policies.plan import RoutePlan

CHANNEL_WORDS = {"in_app": "in-app", "push": "push", "sms": "SMS", "email": "email"}
CONSENT_WORDS = {**CHANNEL_WORDS, "marketing": "marketing messages"}
ADDRESS_WORDS = {"in_app": "an in-app inbox", "push": "an active push device", "sms": "a usable phone number",
                 "email": "a usable email address"}
ATTRIBUTE_WORDS = {"critical": "critical", "marketing": "marketing", "bulk": "bulk transactional",
                   "legal": "a legal notice", "in_app_native": "made for an open app session",
                   "locked": "locked (users cannot turn it off)", "unsubscribable": "unsubscribable in one click"}
LIFECYCLE_WORDS = {"active": "active (seen within {dormant} days)",
                   "dormant": "dormant (last seen {dormant} to {churned} days ago)",
                   "churned": "churned (last seen over {churned} days ago)", "unknown": "never seen active"}
URGENCY_WORDS = {"low": "low", "normal": "normal", "high": "high", "critical": "critical"}
NUMBER_WORDS = {"sms_segments": "the text needs {n} SMS segments", "content_bytes": "the content is {n} bytes",
                "in_app_count_day": "the recipient saw {n} in-app messages today",
                "in_app_count_week": "the recipient saw {n} in-app messages this week",
                "message_count_day": "the recipient got {n} messages today (every channel)",
                "message_count_week": "the recipient got {n} messages this week (every channel)"}
COMPARISON_WORDS = {"is": "exactly", "is_not": "other than", "gt": "more than", "gte": "at least",
                    "lt": "fewer than", "lte": "at most"}
STATUS_WORDS = {"seen": "seen", "read": "read", "delivered": "delivered", "acknowledged": "acknowledged"}


# -- durations ---------------------------------------------------------------------------------
def duration_words(value: timedelta | int | None) -> str:
    """'10 minutes', '2 hours', '3 days', '1 week'."""
    seconds = int(value.total_seconds()) if isinstance(value, timedelta) else int(value or 0)
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _list_words(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


# -- recipient states --------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipientState:
    key: str
    label: str
    facts: frozenset[str]  # the condition facts that make this state worth a row
    build: Callable[[Policy, datetime], tuple[RecipientFacts, datetime]]


def _recipient(now: datetime, *, online: bool = False, last_active_days: float = 2, devices: bool = True,
               phone: bool = True, email: bool = True, marketing: bool = True) -> RecipientFacts:
    return RecipientFacts(
        user_id="example", email="reviewer-example@example.com" if email else None,
        phone="+447400123456" if phone else None,
        devices=(Device(token="example-device-token", platform="fcm"),) if devices else (),
        consents={"in_app": True, "push": True, "sms": True, "email": True, "marketing": marketing},
        timezone="UTC", last_active_at=now - timedelta(days=last_active_days),
        last_heartbeat_at=now - timedelta(seconds=10) if online else None, connected=online)


def _noon(today: date) -> datetime:
    return datetime.combine(today, time(12, 0), tzinfo=UTC)


def _at(state: str, **kw: Any) -> Callable[[Policy, datetime], tuple[RecipientFacts, datetime]]:
    def build(policy: Policy, now: datetime) -> tuple[RecipientFacts, datetime]:
        if state == "quiet":
            start = str((policy.thresholds.get("quiet_hours") or ["22:00"])[0])
            hour, minute = (int(p) for p in start.split(":"))
            now = datetime.combine(now.date(), time(hour, minute), tzinfo=UTC) + timedelta(hours=1)
        if state == "inactive":
            kw["last_active_days"] = int(policy.thresholds.get("dormant_after_days", 30)) + 15
        return _recipient(now, **kw), now
    return build


def _states(policy: Policy) -> tuple[RecipientState, ...]:
    dormant = policy.thresholds.get("dormant_after_days", 30)
    return (
        RecipientState("in_app", "in the app now", frozenset({"presence"}), _at("in_app", online=True)),
        RecipientState("away", "not in the app, active recently (2 days ago)", frozenset(), _at("away")),
        RecipientState("inactive", f"inactive (not seen for over {dormant} days)", frozenset({"lifecycle"}),
                       _at("inactive")),
        RecipientState("no_push", "not in the app, no push device",
                       frozenset({"reachable.push", "available.push"}), _at("no_push", devices=False)),
        RecipientState("no_phone", "no usable phone number", frozenset({"reachable.sms", "available.sms"}),
                       _at("no_phone", phone=False)),
        RecipientState("no_email", "no usable email address",
                       frozenset({"reachable.email", "available.email"}), _at("no_email", email=False)),
        RecipientState("quiet", "not in the app, during quiet hours", frozenset({"in_quiet_hours"}),
                       _at("quiet")),
        RecipientState("no_marketing", "no marketing consent", frozenset({"consent.marketing"}),
                       _at("no_marketing", marketing=False)),
    )


def condition_facts(node: Any) -> set[str]:
    """Every fact a `when` node names."""
    if isinstance(node, Mapping):
        found = {node["fact"]} if isinstance(node.get("fact"), str) else set()
        for value in node.values():
            found |= condition_facts(value)
        return found
    if isinstance(node, list):
        return set().union(*(condition_facts(v) for v in node)) if node else set()
    return set()


def states_for(policy: Policy) -> tuple[RecipientState, ...]:
    """The states worth a row: the baseline (away) and every state whose facts a rule names."""
    named = set().union(*(condition_facts(r.get("when")) for r in policy.document.get("rules") or []
                          if isinstance(r, Mapping)))
    return tuple(s for s in _states(policy) if not s.facts or s.facts & named)


# -- a plan in words ---------------------------------------------------------------------------
def plan_words(plan: RoutePlan) -> str:
    if plan.suppressed or not plan.steps:
        reasons = "; ".join(plan.suppressed_reasons) or "no channel is left"
        return f"nothing is sent ({reasons})"
    parts: list[str] = []
    previous = ""
    for step in plan.steps:
        name = CHANNEL_WORDS.get(step.channel, step.channel)
        if step.mode == StepMode.FIRST:
            text = f"{name} first"
        elif step.mode == StepMode.PARALLEL:
            text = f"{name} at the same time"
        elif step.mode == StepMode.ESCALATE:
            status = STATUS_WORDS.get(step.unless_status or "", step.unless_status or "answered")
            text = f"if not {status} within {duration_words(step.after)}, {name}"
        elif step.mode == StepMode.FALLBACK:
            text = f"then {name} as fallback if {previous} fails"
        else:
            text = f"{name} ({step.mode})"
        if step.hold_ttl:
            text += f", waiting in the inbox for the next session (up to {duration_words(step.hold_ttl)})"
        if step.quiet:
            text += " as a quiet inbox entry (no pop-up)"
        if step.not_before:
            text += f", not before quiet hours end ({step.not_before.strftime('%H:%M')} the recipient's time)"
        parts.append(text)
        previous = name
    words = "; ".join(parts)
    if plan.confirmation:
        remind = plan.confirmation.get("remind_after_seconds")
        escalate = plan.confirmation.get("escalate_after_seconds")
        words += ". Delivery and reading must be confirmed"
        if remind and escalate:
            words += f": reminder after {duration_words(remind)}, escalated after {duration_words(escalate)}"
    return words


@dataclass
class ReadingRow:
    states: list[str]
    words: str
    rules: list[str]  # ids of the document's rules that matched (engine safeguards left out)


@dataclass
class CategoryReading:
    category: str
    attributes: list[str]
    rows: list[ReadingRow] = field(default_factory=list)


def reading_table(policy: Policy, today: date) -> list[CategoryReading]:
    """Per category, the outcome for each recipient state; states with one outcome share a row.
    A normal-urgency, one-segment text message without rich content."""
    states = states_for(policy)
    document_rules = {r.id for r in policy.rules}
    out = []
    for category, attributes in (policy.document.get("categories") or {}).items():
        reading = CategoryReading(str(category), [ATTRIBUTE_WORDS.get(a, a) for a, on in (attributes or {}).items()
                                                  if on is True])
        message = MessageFacts(category=str(category), urgency="normal", title="Example",
                               body="A short example message.")
        by_words: dict[str, ReadingRow] = {}
        for state in states:
            recipient, now = state.build(policy, _noon(today))
            plan = policies.decide(policy, message, recipient, now)
            words = plan_words(plan)
            if words in by_words:
                by_words[words].states.append(state.label)
                continue
            rules = [t.rule_id for t in plan.trace if t.rule_id in document_rules]
            by_words[words] = row = ReadingRow([state.label], words, list(dict.fromkeys(rules)))
            reading.rows.append(row)
        out.append(reading)
    return out


# -- conditions as sentences -------------------------------------------------------------------
def _bool_words(fact: str, value: bool) -> str:
    head, _, tail = fact.partition(".")
    if fact == "expired":
        return "the message has expired" if value else "the message has not expired"
    if fact == "in_quiet_hours":
        return "it is the recipient's quiet hours" if value else "it is not the recipient's quiet hours"
    if fact == "has_rich_media":
        return ("the message carries rich content (an image or a call to action)" if value
                else "the message is plain text")
    if head == "reachable":
        address = ADDRESS_WORDS.get(tail, f"an address for {tail}")
        bare = address.removeprefix("an ").removeprefix("a ")
        return f"the recipient has {address}" if value else f"the recipient has no {bare}"
    if head == "consent":
        what = CONSENT_WORDS.get(tail, tail)
        return f"the recipient agreed to {what}" if value else f"the recipient has not agreed to {what}"
    if head == "available":
        name = CHANNEL_WORDS.get(tail, tail)
        return (f"{name} can be used (address and consent)" if value
                else f"{name} cannot be used (no address or no consent)")
    if head == "preference":
        name = CHANNEL_WORDS.get(tail, tail)
        return (f"the recipient has not turned {name} off for this category" if value
                else f"the recipient turned {name} off for this category")
    if fact == "category.locked":
        return ("users cannot turn the category off (it is locked)" if value
                else "users can turn the category off (it is not locked)")
    if head == "category":
        attribute = ATTRIBUTE_WORDS.get(tail, f"marked '{tail}'")
        return f"the category is {attribute}" if value else f"the category is not {attribute}"
    return f"{fact} is {'true' if value else 'false'}"


def _enum_value_words(fact: str, value: str, thresholds: Mapping[str, Any]) -> str:
    if fact == "lifecycle":
        return LIFECYCLE_WORDS.get(value, value).format(dormant=thresholds.get("dormant_after_days", "?"),
                                                        churned=thresholds.get("churned_after_days", "?"))
    return str(value)


def _leaf_words(node: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
    fact = str(node.get("fact"))
    op = next((k for k in node if k != "fact"), "is")
    value = node.get(op)
    negative = op in ("is_not", "not_in")
    if isinstance(value, bool):
        return _bool_words(fact, value != negative)
    if fact == "presence" and value in ("online", "offline"):
        in_app = (value == "online") != negative
        return "the recipient is in the app now" if in_app else "the recipient is not in the app"
    if fact in NUMBER_WORDS or op in ("gt", "gte", "lt", "lte"):
        number = value
        if isinstance(value, Mapping) and "threshold" in value:
            number = f"{thresholds.get(value['threshold'], '?')} (the threshold {value['threshold']})"
        template = NUMBER_WORDS.get(fact, fact + " is {n}")
        return template.format(n=f"{COMPARISON_WORDS.get(op, op)} {number}")
    subject = {"category": "the category", "lifecycle": "the recipient is", "urgency": "the sender's urgency",
               "sms_encoding": "the SMS text's encoding"}.get(fact, fact)
    values = value if isinstance(value, list) else [value]
    shown = [_enum_value_words(fact, str(v), thresholds) for v in values]
    if fact == "lifecycle":
        return f"{subject} {'not ' if negative else ''}{_list_words(shown, 'or')}"
    if len(shown) > 1:
        return f"{subject} is {'not ' if negative else ''}one of {_list_words(shown, 'or')}"
    return f"{subject} is {'not ' if negative else ''}{shown[0]}"


def condition_words(node: Any, thresholds: Mapping[str, Any]) -> str:
    """A `when` node as one sentence: 'the recipient is not in the app and the category is not critical'."""
    if node is None or node == "always":
        return "always (every message)"
    if not isinstance(node, Mapping):
        return str(node)
    if "fact" in node:
        return _leaf_words(node, thresholds)
    if len(node) != 1:
        return str(node)
    (key, value), = node.items()
    if key == "not":
        return f"it is not so that {condition_words(value, thresholds)}"
    if key in ("all", "any") and isinstance(value, list):
        if key == "all":
            # Negated parts read as exceptions: "A and B, unless C" (not "it is not so that C").
            plain = [v for v in value if not (isinstance(v, Mapping) and set(v) == {"not"})]
            negated = [v["not"] for v in value if v not in plain]
            words = _list_words([condition_words(v, thresholds) for v in plain], "and") if plain else "always"
            if negated:
                words += ", unless " + _list_words([condition_words(v, thresholds) for v in negated], "or")
            return words
        parts = [condition_words(v, thresholds) for v in value]
        return f"either {_list_words(parts, 'or')}" if len(parts) > 1 else "".join(parts)
    return str(node)


# -- effects as sentences ----------------------------------------------------------------------
def _channels(raw: Any) -> list[str]:
    items = raw if isinstance(raw, list) else [raw]
    return [CHANNEL_WORDS.get(str(c), str(c)) for c in items]


def _route_words(route: list[Any]) -> str:
    parts: list[str] = []
    previous = ""
    for i, entry in enumerate(route):
        spec = entry if isinstance(entry, Mapping) else {"channel": entry}
        name = CHANNEL_WORDS.get(str(spec.get("channel")), str(spec.get("channel")))
        mode = spec.get("mode", StepMode.FALLBACK)
        if i == 0:
            parts.append(f"{name} first")
        elif mode == StepMode.PARALLEL:
            parts.append(f"{name} at the same time")
        elif mode == StepMode.ESCALATE:
            after = parse_duration(spec.get("after"))
            status = STATUS_WORDS.get(str(spec.get("unless")), str(spec.get("unless")))
            parts.append(f"if not {status} within {duration_words(after) if after else spec.get('after')}, {name}")
        else:
            parts.append(f"then {name} as fallback if {previous} fails")
        previous = name
    return "; ".join(parts)


def effect_words(then: Any) -> str:
    """A `then` mapping as sentences: 'Do not use SMS.' 'Route: SMS first; then email as fallback if SMS fails.'"""
    if not isinstance(then, Mapping):
        return str(then)
    out: list[str] = []
    if then.get("suppress") is True:
        out.append("Send nothing.")
    if "exclude" in then:
        out.append(f"Do not use {_list_words(_channels(then['exclude']), 'or')}.")
    if isinstance(then.get("route"), list):
        out.append(f"Route: {_route_words(then['route'])}.")
    if "require" in then:
        out.append(f"If {_list_words(_channels(then['require']))} cannot be used, send nothing.")
    if "require_any" in then:
        out.append(f"At least one of {_list_words(_channels(then['require_any']), 'or')} must be used, "
                   "else send nothing.")
    if "hold_in_app" in then:
        hold = parse_duration(then["hold_in_app"])
        out.append(f"A recipient not in the app gets the in-app message at their next session "
                   f"(held up to {duration_words(hold) if hold else then['hold_in_app']}).")
    if "defer_in_quiet_hours" in then:
        names = _list_words(_channels(then["defer_in_quiet_hours"]))
        out.append(f"{names[:1].upper()}{names[1:]} wait until quiet hours end.")
    if "cap_in_app" in then:
        cap = then["cap_in_app"] if isinstance(then["cap_in_app"], Mapping) else {}
        over = ("a recipient in the app gets a quiet inbox entry instead" if cap.get("over_cap") == "quiet"
                else "no in-app message")
        limits = (f"{cap['per_day']} a day and {cap['per_week']} a week" if "per_day" in cap and "per_week" in cap
                  else "the thresholds in_app_cap_per_day and in_app_cap_per_week")
        out.append(f"Live in-app messages are capped at {limits}; over the cap, {over}.")
    if isinstance(then.get("cap_messages"), Mapping):
        cap = then["cap_messages"]
        limits = _list_words([f"{cap[k]} a {k.removeprefix('per_')}" for k in ("per_day", "per_week") if k in cap])
        over = "the message waits for the next day or week" if cap.get("over") == "defer" else "the message is dropped"
        out.append(f"At most {limits} across every channel; over that, {over}.")
    if "require_confirmation" in then:
        raw = then["require_confirmation"]
        of = raw.get("of") if isinstance(raw, Mapping) else raw
        kinds = _list_words([str(k) for k in (of if isinstance(of, list) else [of])])
        text = f"The {kinds} must be confirmed"
        if isinstance(raw, Mapping) and raw.get("remind_after") and raw.get("escalate_after"):
            remind, escalate = parse_duration(raw["remind_after"]), parse_duration(raw["escalate_after"])
            text += (f": a reminder if not acknowledged within {duration_words(remind)}, escalated after "
                     f"{duration_words(escalate)}") if remind and escalate else ""
        out.append(text + ".")
    if isinstance(then.get("provider"), Mapping):
        out.append("Use " + _list_words([f"{v} for {CHANNEL_WORDS.get(k, k)}" for k, v in then["provider"].items()])
                   + ".")
    return " ".join(out) or "No effect."
