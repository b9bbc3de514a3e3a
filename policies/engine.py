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

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

from .constants import (
    CHANNELS,
    ENGINE_AVAILABILITY,
    ENGINE_CRITICAL,
    ENGINE_EXPIRED,
    ENGINE_NO_CHANNEL,
    ENGINE_PREFERENCE,
    ENGINE_PRESENCE,
    ENGINE_ROUTE,
    IN_APP,
    IN_APP_OVER_CAP_QUIET,
    OVER_CAP_SUPPRESS,
    StepMode,
)
from .derive import cap_windows, derive
from .document import Policy, Rule
from .effects import MessageCap, RouteEntry, format_duration
from .facts import MessageFacts, RecipientFacts
from .plan import Exclusion, RoutePlan, RuleMatch, Step, fast_new

_DEFAULT_ROUTE = tuple(RouteEntry(ch) for ch in CHANNELS)
_UNAVAILABLE = {
    "in_app": "no consent for in-app messages",
    "push": "no active push device or no push consent",
    "sms": "no usable phone number or no SMS consent",
    "email": "no usable email address or no email consent",
}
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_NO_MARKETING = "no marketing consent for a marketing message"
# Fact keys the floor reads, built once (f-strings in the hot path cost more than the lookups).
_FLOOR_KEYS = tuple((ch, f"available.{ch}", f"reachable.{ch}", f"consent.{ch}") for ch in CHANNELS)
_FLOOR_MATCHES = {ch: RuleMatch(ENGINE_AVAILABILITY, "Channel needs address and consent", f"exclude {ch}")
                  for ch in CHANNELS}
_OFFLINE = "the user is offline and in-app is not held"
_EXPIRED_MATCH = RuleMatch(ENGINE_EXPIRED, "Expired messages are not sent", "suppress")
_CRITICAL_MATCH = RuleMatch(ENGINE_CRITICAL, "Critical never in-app alone", "suppress")
_PRESENCE_MATCH = RuleMatch(ENGINE_PRESENCE, "In-app needs a session", "exclude in_app")
_PREF_KEYS = tuple((ch, f"preference.{ch}") for ch in CHANNELS)


class _Decision:
    """Mutable scratch state of one decision; turned into an immutable RoutePlan at the end."""

    __slots__ = ("policy", "facts", "excluded", "trace", "route", "route_rule", "required", "required_any",
                 "hold", "hold_rule", "defer", "suppressed", "requires", "providers", "reasons", "quiet", "confirm",
                 "now", "tz", "cap_until", "cap_rule")

    def __init__(self, policy: Policy, facts: dict[str, Any], now: datetime, tz: str = "UTC"):
        # Rarely used parts start as shared empty tuples / mappings and are replaced on first
        # write: fewer allocations per decision, less garbage-collector work.
        self.policy = policy
        self.facts = facts
        self.excluded: dict[str, Exclusion] = {}
        self.trace: list[RuleMatch] = []
        self.route: tuple[RouteEntry, ...] = _DEFAULT_ROUTE
        self.route_rule: Rule | None = None
        self.required: tuple[tuple[str, Rule], ...] = ()
        self.required_any: tuple[tuple[tuple[str, ...], Rule], ...] = ()
        self.hold: timedelta | None = None
        self.hold_rule: Rule | None = None
        self.defer: Mapping[str, Rule] = _NOTHING
        self.suppressed: tuple[tuple[str, str], ...] = ()  # (rule id, reason)
        self.requires: tuple[str, ...] = ()
        self.providers: Mapping[str, str] = _NOTHING
        self.reasons: dict[str, str] | None = None
        self.confirm: tuple[timedelta, timedelta] | None = None
        self.quiet: str | None = None  # why in-app is a quiet inbox entry (over the cap, user in the app)
        self.now, self.tz = now, tz
        self.cap_until: datetime | None = None  # over a cross-channel cap: nothing before this
        self.cap_rule: Rule | None = None

    def reason(self, rule: Rule) -> str:
        if rule.static_reason is not None:
            return rule.static_reason
        # Rendered lazily and once: most matching rules never need their sentence.
        if self.reasons is None:
            self.reasons = {}
        text = self.reasons.get(rule.id)
        if text is None:
            text = self.reasons[rule.id] = rule.reason(self.facts, self.policy.thresholds)
        return text

    def exclude(self, channel: str, rule_id: str, reason: str) -> None:
        if channel not in self.excluded:
            self.excluded[channel] = _exclusion(channel, rule_id, reason)

    def apply(self, rule: Rule) -> None:
        e = rule.effects
        self.trace.append(rule.match)
        for ch in e.exclude:
            if ch not in self.excluded:
                self.excluded[ch] = _exclusion(ch, rule.id, self.reason(rule))
        if e.route is not None:
            self.route, self.route_rule = e.route, rule
        if e.require:
            self.required += tuple((ch, rule) for ch in e.require)
        if e.require_any:
            self.required_any += ((e.require_any, rule),)
        if e.hold_in_app is not None:
            self.hold, self.hold_rule = e.hold_in_app, rule
        if e.defer_in_quiet_hours:
            self.defer = {ch: rule for ch in e.defer_in_quiet_hours} | dict(self.defer)
        if e.cap_in_app is not None:
            day, week = e.cap_in_app
            f = self.facts
            over = None
            if f["in_app_count_day"] >= day:
                over = f"in-app cap reached: {f['in_app_count_day']} today (cap {day})"
            elif f["in_app_count_week"] >= week:
                over = f"in-app cap reached: {f['in_app_count_week']} this week (cap {week})"
            if over is not None:
                if e.cap_over == IN_APP_OVER_CAP_QUIET and f["presence"] == "online":
                    # A user in the app is not pulled out of it (seed 004): the message waits
                    # in the notification center, without a live display.
                    self.quiet = f"{over}; a quiet inbox entry, no live display ({rule.id})"
                else:
                    self.exclude(IN_APP, rule.id, over)
        if e.cap_messages is not None:
            self.cap_messages(rule, e.cap_messages)
        if e.suppress:
            self.suppressed += ((rule.id, self.reason(rule)),)
        for c in e.confirmations:
            if c not in self.requires:
                self.requires += (c,)
        if e.confirm_timers is not None:
            self.confirm = e.confirm_timers
        if e.providers:
            self.providers = {**self.providers, **e.providers}

    def cap_messages(self, rule: Rule, cap: MessageCap) -> None:
        """Over a cross-channel cap: suppress, or defer every step to the start of the next
        window (the next ISO week when the weekly cap is reached, else the next local day).
        The trace says which cap and what it did."""
        f = self.facts
        day, week = f["message_count_day"], f["message_count_week"]
        if cap.per_week is not None and week >= cap.per_week:
            why, window = f"{week} messages this week (cap {cap.per_week})", 3
        elif cap.per_day is not None and day >= cap.per_day:
            why, window = f"{day} messages today (cap {cap.per_day})", 2
        else:
            return
        why = f"cross-channel frequency cap reached: {why}"
        if cap.over == OVER_CAP_SUPPRESS:
            self.suppressed += ((rule.id, why),)
            self.trace.append(RuleMatch(rule.id, rule.title, f"suppress: {why}"))
            return
        until = cap_windows(self.now, self.tz)[window]
        if self.cap_until is None or until > self.cap_until:
            self.cap_until, self.cap_rule = until, rule
        stamp = until.isoformat().replace("+00:00", "Z")
        self.trace.append(RuleMatch(rule.id, rule.title, f"defer every channel to {stamp}: {why}"))

    def preferences(self) -> None:
        """Channels the user turned off for this category (derive() already ignores the
        preferences of locked categories). Only channels the plan could use are named."""
        f = self.facts
        wanted = {e.channel for e in self.route}.union(ch for ch, _ in self.required)
        for group, _ in self.required_any:
            wanted.update(group)
        category = f["category"]
        for ch, key in _PREF_KEYS:
            if not f[key] and ch not in self.excluded and ch in wanted:
                name = f"preferences.{category}.{ch}"
                self.excluded[ch] = _exclusion(ch, ENGINE_PREFERENCE,
                                               f"the user turned off {category} messages by {ch} ({name})")
                self.trace.append(RuleMatch(ENGINE_PREFERENCE, "The user's preference", f"exclude {ch}: {name} is off"))

    def floor(self) -> None:
        f = self.facts
        if f["expired"] and not self.suppressed:
            self.suppressed += ((ENGINE_EXPIRED, "the message expired before it could be sent"),)
            self.trace.append(_EXPIRED_MATCH)
        if self.suppressed:
            return  # nothing will be sent; every channel gets the suppression as its reason
        for ch, available, reachable, consent in _FLOOR_KEYS:
            if not f[available] and ch not in self.excluded:
                why = _NO_MARKETING if f[reachable] and f[consent] else _UNAVAILABLE[ch]
                self.excluded[ch] = _exclusion(ch, ENGINE_AVAILABILITY, why)
                self.trace.append(_FLOOR_MATCHES[ch])
        if not (f["preference.in_app"] and f["preference.push"] and f["preference.email"] and f["preference.sms"]):
            self.preferences()
        offline = f["presence"] == "offline"
        if offline and self.hold is None and IN_APP not in self.excluded:
            self.excluded[IN_APP] = _exclusion(IN_APP, ENGINE_PRESENCE, _OFFLINE)
            self.trace.append(_PRESENCE_MATCH)

    def steps(self) -> list[tuple[RouteEntry, str]]:
        """(entry, reason) for each channel used, before modes are finalised."""
        excluded = self.excluded
        route_reason = self.reason(self.route_rule) if self.route_rule else "default channel order"
        chosen = [(e, route_reason) for e in self.route if e.channel not in excluded]
        if not self.required and not self.required_any:
            return chosen
        used = {e.channel for e, _ in chosen}
        for ch, rule in self.required:
            if ch in self.excluded:
                ex = self.excluded[ch]
                self.suppressed += ((rule.id, f"{ch} is required but not usable ({ex.rule}: {ex.reason})"),)
            elif ch not in used:
                chosen.append((RouteEntry(ch), self.reason(rule)))
                used.add(ch)
        for group, rule in self.required_any:
            if used.intersection(group):
                continue
            usable = [ch for ch in group if ch not in self.excluded]
            if not usable:
                why = f"needs one of {', '.join(group)}, none is usable ({self.reason(rule)})"
                self.suppressed += ((rule.id, why),)
            else:
                chosen.append((RouteEntry(usable[0]), self.reason(rule)))
                used.add(usable[0])
        return chosen


def decide(policy: Policy, message: MessageFacts, facts: RecipientFacts, now: datetime) -> RoutePlan:
    """Route one message to one recipient at ``now``. Pure and deterministic."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)  # naive means UTC, as everywhere in the service
    f, quiet_end = derive(policy, message, facts, now)
    d = _Decision(policy, f, now, facts.timezone)
    excluded, trace = d.excluded, d.trace
    for when, rule, static_exclusions, route in policy.rules_by_category[message.category]:
        if when(f):
            # Shortcuts for the two common kinds of rule; apply() handles everything else.
            if static_exclusions:
                trace.append(rule.match)
                for ex in static_exclusions:
                    if ex.channel not in excluded:
                        excluded[ex.channel] = ex
            elif route is not None:
                trace.append(rule.match)
                d.route, d.route_rule = route, rule
            else:
                d.apply(rule)
    d.floor()
    chosen = d.steps()
    steps = [] if d.suppressed else _materialise(d, chosen, quiet_end, message.expires_at, now)
    if steps and f["category.critical"] and all(s.channel == IN_APP for s in steps):
        # Whatever the rules and deferrals left, a critical message never rides on in-app alone.
        d.suppressed += ((ENGINE_CRITICAL, "a critical message cannot rely on in-app alone"),)
        trace.append(_CRITICAL_MATCH)
        steps = []
    return _finish(d, steps)


def _materialise(d: _Decision, chosen: list[tuple[RouteEntry, str]], quiet_end: datetime | None,
                 expires_at: datetime | None, now: datetime) -> list[Step]:
    """Chosen route entries -> Steps: modes, quiet-hours deferral, in-app hold, providers."""
    f = d.facts
    steps: list[Step] = []
    for entry, reason in chosen:
        ch = entry.channel
        not_before = None
        defer_rule = d.defer.get(ch)
        if defer_rule is not None and f["in_quiet_hours"]:
            not_before = quiet_end
            if expires_at is not None and not_before >= expires_at:  # type: ignore[operator]
                d.exclude(ch, defer_rule.id, "quiet hours end after the message expires")
                continue
        if d.cap_until is not None:
            if not_before is None or d.cap_until > not_before:
                not_before = d.cap_until
            if expires_at is not None and not_before >= expires_at:
                d.exclude(ch, d.cap_rule.id, "the frequency cap window ends after the message expires")  # type: ignore[union-attr]
                continue
        hold = None
        if ch == IN_APP and f["presence"] == "offline":
            hold = d.hold  # the floor excluded in-app for offline users unless a rule holds it
            if expires_at is not None:
                hold = min(hold, expires_at - now)  # type: ignore[type-var]
            reason = d.reason(d.hold_rule) if d.hold_rule else reason
        quiet = ch == IN_APP and d.quiet is not None
        if quiet:
            reason = d.quiet
        mode = entry.mode if steps else StepMode.FIRST  # whichever step survives first starts first
        provider = d.providers.get(ch)
        if mode == StepMode.ESCALATE:
            steps.append(_step(ch, mode, provider, entry.after, entry.unless, not_before, hold, reason, quiet))
        else:
            steps.append(_step(ch, mode, provider, None, None, not_before, hold, reason, quiet))
    return steps


def _finish(d: _Decision, steps: list[Step]) -> RoutePlan:
    """Explain every unused channel and freeze the plan."""
    excluded = d.excluded
    if not steps and not d.suppressed:
        why = "; ".join(f"{ch}: {excluded[ch].reason}" for ch in CHANNELS if ch in excluded)
        d.suppressed += ((ENGINE_NO_CHANNEL, f"no usable channel ({why})" if why else "no usable channel"),)

    # A used channel is never in `excluded`, so the two together cover all four channels once
    # every unused channel has its exclusion.
    if len(steps) + len(excluded) < len(CHANNELS):
        used = {s.channel for s in steps}
        on_route = {e.channel for e in d.route}
        for ch in CHANNELS:
            if ch in used or ch in excluded:
                continue
            # Off the route: the route's rule says why. On it but unused: only suppression explains it.
            if ch not in on_route and d.route_rule is not None:
                excluded[ch] = _exclusion(ch, d.route_rule.id, d.reason(d.route_rule))
            elif d.suppressed:
                excluded[ch] = _exclusion(ch, *d.suppressed[0])
            else:
                excluded[ch] = _exclusion(ch, ENGINE_ROUTE, "not on the route")

    suppressed = d.suppressed
    return fast_new(RoutePlan, {
        "policy_version": d.policy.version,
        "steps": tuple(steps),
        "excluded": tuple([excluded[ch] for ch in CHANNELS if ch in excluded]),
        "suppressed": bool(suppressed),
        "suppressed_reasons": tuple([f"{rule}: {why}" for rule, why in suppressed]) if suppressed else (),
        "trace": tuple(d.trace),
        "facts": d.facts,
        "requires": d.requires,
        "confirmation": None if d.confirm is None or not steps else {
            "remind_after_seconds": int(d.confirm[0].total_seconds()),
            "escalate_after_seconds": int(d.confirm[1].total_seconds())},
    })


# Steps and exclusions are immutable and highly repetitive across decisions: one shared
# instance per distinct value saves most allocations (and garbage-collector work). Bounded,
# because reasons with placeholders, deferrals and hold TTLs vary.
_CACHE_LIMIT = 10_000
_STEPS: dict[tuple[Any, ...], Step] = {}
_EXCLUSIONS: dict[tuple[str, str, str], Exclusion] = {}


def _step(channel: str, mode: StepMode, provider: str | None, after: timedelta | None, unless: str | None,
          not_before: datetime | None, hold: timedelta | None, reason: str, quiet: bool = False) -> Step:
    key = (channel, mode, provider, after, unless, not_before, hold, reason, quiet)
    found = _STEPS.get(key)
    if found is None:
        if len(_STEPS) > _CACHE_LIMIT:
            _STEPS.clear()
        found = _STEPS[key] = Step(channel, mode, provider, after, unless, not_before, hold, reason, quiet)
    return found


def _exclusion(channel: str, rule: str, reason: str) -> Exclusion:
    key = (channel, rule, reason)
    found = _EXCLUSIONS.get(key)
    if found is None:
        if len(_EXCLUSIONS) > _CACHE_LIMIT:
            _EXCLUSIONS.clear()
        found = _EXCLUSIONS[key] = Exclusion(channel, rule, reason)
    return found


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
    if step.quiet:
        text += " quiet"
    return text


