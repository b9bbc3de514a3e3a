"""decide(): evaluate every rule against the derived facts and build the route plan.

Evaluation, in order:
1. Every rule whose `when` holds contributes its effects; all matches go to the trace.
   Exclusions accumulate (the first rule to exclude a channel gives the recorded reason);
   the last matching `route` wins, so a document reads from general to specific.
2. The engine's safety floor, whatever the document says: no channel without its address and
   consent, no live in-app step for an offline user, nothing for an expired message, and a
   critical category never rides on in-app alone.
3. Steps are the route's channels that survive, then required channels not on the route.
   Quiet-hours deferral and in-app holds are applied; every unused channel gets an exclusion.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from .constants import (
    CHANNELS,
    ENGINE_AVAILABILITY,
    ENGINE_CRITICAL,
    ENGINE_EXPIRED,
    ENGINE_NO_CHANNEL,
    ENGINE_PRESENCE,
    ENGINE_ROUTE,
    IN_APP,
    MODE_ESCALATE,
    MODE_FIRST,
)
from .derive import derive
from .document import Policy, Rule
from .effects import RouteEntry, format_duration
from .facts import MessageFacts, RecipientFacts
from .plan import Exclusion, RoutePlan, RuleMatch, Step, fast_new

_DEFAULT_ROUTE = tuple(RouteEntry(ch) for ch in CHANNELS)
_UNAVAILABLE = {
    "in_app": "no consent for in-app messages",
    "push": "no active push device or no push consent",
    "sms": "no usable phone number or no SMS consent",
    "email": "no usable email address or no email consent",
}


_NO_MARKETING = "no marketing consent for a marketing message"


class _Decision:
    """Mutable scratch state of one decision; turned into an immutable RoutePlan at the end."""

    __slots__ = ("policy", "facts", "excluded", "trace", "route", "route_rule", "required", "required_any",
                 "hold", "hold_rule", "defer", "suppressed", "requires", "providers", "reasons")

    def __init__(self, policy: Policy, facts: dict[str, Any]):
        self.policy = policy
        self.facts = facts
        self.excluded: dict[str, tuple[str, str]] = {}
        self.trace: list[RuleMatch] = []
        self.route: tuple[RouteEntry, ...] = _DEFAULT_ROUTE
        self.route_rule: Rule | None = None
        self.required: list[tuple[str, Rule]] = []
        self.required_any: list[tuple[tuple[str, ...], Rule]] = []
        self.hold: timedelta | None = None
        self.hold_rule: Rule | None = None
        self.defer: dict[str, Rule] = {}
        self.suppressed: list[tuple[str, str]] = []  # (rule id, reason)
        self.requires: list[str] = []
        self.providers: dict[str, str] = {}
        self.reasons: dict[str, str] = {}

    def reason(self, rule: Rule) -> str:
        # Rendered lazily and once: most matching rules never need their sentence.
        text = self.reasons.get(rule.id)
        if text is None:
            text = self.reasons[rule.id] = rule.reason(self.facts, self.policy.thresholds)
        return text

    def exclude(self, channel: str, rule_id: str, reason: str) -> None:
        if channel not in self.excluded:
            self.excluded[channel] = (rule_id, reason)

    def apply(self, rule: Rule) -> None:
        e = rule.effects
        self.trace.append(rule.match)
        for ch in e.exclude:
            if ch not in self.excluded:
                self.excluded[ch] = (rule.id, self.reason(rule))
        if e.route is not None:
            self.route, self.route_rule = e.route, rule
        for ch in e.require:
            self.required.append((ch, rule))
        if e.require_any:
            self.required_any.append((e.require_any, rule))
        if e.hold_in_app is not None:
            self.hold, self.hold_rule = e.hold_in_app, rule
        for ch in e.defer_in_quiet_hours:
            self.defer.setdefault(ch, rule)
        if e.cap_in_app is not None:
            day, week = e.cap_in_app
            f = self.facts
            if f["in_app_count_day"] >= day:
                self.exclude(IN_APP, rule.id,
                             f"in-app cap reached: {f['in_app_count_day']} today (cap {day})")
            elif f["in_app_count_week"] >= week:
                self.exclude(IN_APP, rule.id,
                             f"in-app cap reached: {f['in_app_count_week']} this week (cap {week})")
        if e.suppress:
            self.suppressed.append((rule.id, self.reason(rule)))
        for c in e.confirmations:
            if c not in self.requires:
                self.requires.append(c)
        self.providers.update(e.providers)

    def floor(self) -> None:
        f = self.facts
        if f["expired"] and not self.suppressed:
            self.suppressed.append((ENGINE_EXPIRED, "the message expired before it could be sent"))
            self.trace.append(RuleMatch(ENGINE_EXPIRED, "Expired messages are not sent", "suppress"))
        if self.suppressed:
            return  # nothing will be sent; every channel gets the suppression as its reason
        for ch in CHANNELS:
            if not f[f"available.{ch}"] and ch not in self.excluded:
                why = _NO_MARKETING if f[f"reachable.{ch}"] and f[f"consent.{ch}"] else _UNAVAILABLE[ch]
                self.excluded[ch] = (ENGINE_AVAILABILITY, why)
                self.trace.append(RuleMatch(ENGINE_AVAILABILITY, "Channel needs address and consent",
                                            f"exclude {ch}"))
        offline = f["presence"] == "offline"
        if offline and self.hold is None and IN_APP not in self.excluded:
            self.excluded[IN_APP] = (ENGINE_PRESENCE, "the user is offline and in-app is not held")
            self.trace.append(RuleMatch(ENGINE_PRESENCE, "In-app needs a session", "exclude in_app"))

    def steps(self) -> list[tuple[RouteEntry, str]]:
        """(entry, reason) for each channel used, before modes are finalised."""
        route_reason = self.reason(self.route_rule) if self.route_rule else "default channel order"
        chosen = [(e, route_reason) for e in self.route if e.channel not in self.excluded]
        used = {e.channel for e, _ in chosen}
        for ch, rule in self.required:
            if ch in self.excluded:
                rule_id, why = self.excluded[ch]
                self.suppressed.append((rule.id, f"{ch} is required but not usable ({rule_id}: {why})"))
            elif ch not in used:
                chosen.append((RouteEntry(ch), self.reason(rule)))
                used.add(ch)
        for group, rule in self.required_any:
            if used.intersection(group):
                continue
            usable = [ch for ch in group if ch not in self.excluded]
            if not usable:
                self.suppressed.append(
                    (rule.id, f"needs one of {', '.join(group)}, none is usable ({self.reason(rule)})"))
            else:
                chosen.append((RouteEntry(usable[0]), self.reason(rule)))
                used.add(usable[0])
        if self.facts.get("category.critical") and chosen and used <= {IN_APP}:
            self.suppressed.append((ENGINE_CRITICAL, "a critical message cannot rely on in-app alone"))
            self.trace.append(RuleMatch(ENGINE_CRITICAL, "Critical never in-app alone", "suppress"))
        return chosen


def decide(policy: Policy, message: MessageFacts, facts: RecipientFacts, now: datetime) -> RoutePlan:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # naive means UTC, as everywhere in the service
    f = derive(policy, message, facts, now)
    d = _Decision(policy, f)
    for rule in policy.rules:
        if rule.when(f):
            d.apply(rule)
    d.floor()
    chosen = d.steps()

    expires_at = message.expires_at
    steps: list[Step] = []
    if not d.suppressed:
        for entry, reason in chosen:
            ch = entry.channel
            not_before = None
            defer_rule = d.defer.get(ch)
            if defer_rule is not None and f["in_quiet_hours"]:
                not_before = f["quiet_hours_end"]
                if expires_at is not None and not_before >= expires_at:
                    d.exclude(ch, defer_rule.id, "quiet hours end after the message expires")
                    continue
            hold = None
            if ch == IN_APP and f["presence"] == "offline":
                hold = d.hold
                if expires_at is not None:
                    hold = min(hold, expires_at - now)  # type: ignore[type-var]
                reason = d.reason(d.hold_rule) if d.hold_rule else reason
            mode = entry.mode if steps else MODE_FIRST
            escalate = mode == MODE_ESCALATE
            steps.append(fast_new(Step, {
                "channel": ch,
                "mode": mode,
                "provider": d.providers.get(ch),
                "after": entry.after if escalate else None,
                "unless_status": entry.unless if escalate else None,
                "not_before": not_before,
                "hold_ttl": hold,
                "reason": reason,
            }))
    if not steps and not d.suppressed:
        why = "; ".join(f"{ch}: {d.excluded[ch][1]}" for ch in CHANNELS if ch in d.excluded)
        d.suppressed.append((ENGINE_NO_CHANNEL, f"no usable channel ({why})" if why else "no usable channel"))

    used = {s.channel for s in steps}
    on_route = {e.channel for e in d.route}
    for ch in CHANNELS:
        if ch in used or ch in d.excluded:
            continue
        # Off the route: the route's rule says why. On it but unused: only suppression explains it.
        if ch not in on_route and d.route_rule is not None:
            d.excluded[ch] = (d.route_rule.id, d.reason(d.route_rule))
        elif d.suppressed:
            d.excluded[ch] = d.suppressed[0]
        else:
            d.excluded[ch] = (ENGINE_ROUTE, "not on the route")

    excluded = tuple(
        fast_new(Exclusion, {"channel": ch, "rule": d.excluded[ch][0], "reason": d.excluded[ch][1]})
        for ch in CHANNELS if ch not in used
    )
    return fast_new(RoutePlan, {
        "policy_version": policy.version,
        "steps": tuple(steps),
        "excluded": excluded,
        "suppressed": bool(d.suppressed),
        "suppressed_reasons": tuple(f"{rule_id}: {why}" for rule_id, why in d.suppressed),
        "trace": tuple(d.trace),
        "facts": _public_facts(f),
        "requires": tuple(d.requires),
    })


def _public_facts(f: dict[str, Any]) -> dict[str, Any]:
    out = dict(f)
    end = out["quiet_hours_end"]
    out["quiet_hours_end"] = end.isoformat() if end is not None else None
    out["available"] = [ch for ch in CHANNELS if f[f"available.{ch}"]]
    return out


def explain(policy: Policy, message_dict: dict[str, Any], facts_dict: dict[str, Any], now: datetime) -> dict:
    """Decide from plain dicts (CLI, replays of stored facts) and return the plan as a dict."""
    plan = decide(policy, MessageFacts.from_dict(message_dict), RecipientFacts.from_dict(facts_dict), now)
    return plan.to_dict()


def describe_step(step: Step) -> str:
    """Compact one-line form used by the golden files: 'push escalate after 10m unless read'."""
    text = f"{step.channel} {step.mode}"
    if step.after is not None:
        text += f" after {format_duration(step.after)} unless {step.unless_status}"
    if step.hold_ttl is not None:
        text += f" hold {format_duration(step.hold_ttl)}"
    if step.not_before is not None:
        text += f" not_before {step.not_before.isoformat().replace('+00:00', 'Z')}"
    if step.provider:
        text += f" via {step.provider}"
    return text


