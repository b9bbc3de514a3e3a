"""How two routing plans for the same message differ, in words a reviewer understands.

A plan is compared as its ordered steps — channel, mode, escalation delay and condition,
held back or not (quiet hours, a cap), provider — and whether it is suppressed. Two plans with
the same channels but another order or another mode are different plans: SMS moving from
first to fallback is a change, even though the message still "uses SMS".

Service API:
- ``plan_key(plan) -> PlanKey`` and ``stored_plan_key(route_dict) -> PlanKey``: equal keys,
  same plan (cheap; compare these first); ``stored_steps_key(suppressed, steps)`` the same
  from those two parts of a stored route
- ``classify(before, after) -> list[tuple[ChangeKind, str]]``: every kind of change between
  two different keys, each with a sentence ("SMS: first → fallback")
- ``KIND_LABELS``: a reviewer's name for each kind; ``CHANNEL_LABELS``, ``MODE_LABELS``
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NamedTuple

import policies
from policies import StepMode
from policies.effects import format_duration

from ..domain.statuses import ChangeKind

CHANNEL_LABELS = {"in_app": "in-app", "push": "push", "sms": "SMS", "email": "email"}
MODE_LABELS = {
    StepMode.FIRST: "first (sent straight away)",
    StepMode.PARALLEL: "parallel (sent together with the step before)",
    StepMode.FALLBACK: "fallback (only if the step before fails)",
    StepMode.ESCALATE: "escalation (after a delay, unless the step before was seen)",
}
KIND_LABELS = {
    ChangeKind.NEWLY_SUPPRESSED: "newly suppressed (nothing would be sent)",
    ChangeKind.NO_LONGER_SUPPRESSED: "no longer suppressed (would now be sent)",
    ChangeKind.CHANNEL_ADDED: "channel added",
    ChangeKind.CHANNEL_REMOVED: "channel removed",
    ChangeKind.FIRST_CHANNEL_CHANGED: "first channel changed",
    ChangeKind.ORDER_CHANGED: "order of channels changed",
    ChangeKind.MODE_CHANGED: "a step's mode changed",
    ChangeKind.DELAY_CHANGED: "a step's delay changed",
    ChangeKind.NEWLY_DEFERRED: "newly held back (quiet hours or a cap)",
    ChangeKind.NO_LONGER_DEFERRED: "no longer held back",
    ChangeKind.PROVIDER_CHANGED: "provider changed",
}


class StepKey(NamedTuple):
    channel: str
    mode: str
    after_seconds: int | None
    unless_status: str | None
    deferred: bool
    provider: str | None


class PlanKey(NamedTuple):
    suppressed: bool
    steps: tuple[StepKey, ...]


def plan_key(plan: policies.RoutePlan) -> PlanKey:
    return PlanKey(plan.suppressed, tuple([
        StepKey(s.channel, s.mode, None if s.after is None else int(s.after.total_seconds()), s.unless_status,
                s.not_before is not None, s.provider) for s in plan.steps]))


def stored_plan_key(route: dict[str, Any]) -> PlanKey:
    """The key of a route as stored on a message (RoutePlan.to_dict())."""
    return stored_steps_key(route.get("suppressed"), route.get("steps"))


def stored_steps_key(suppressed: Any, steps: list[dict[str, Any]] | None) -> PlanKey:
    """The key from a stored route's `suppressed` and `steps` alone (read without the rest)."""
    return PlanKey(bool(suppressed), tuple(
        StepKey(s["channel"], s["mode"], s.get("after_seconds"), s.get("unless_status"), bool(s.get("not_before")),
                s.get("provider")) for s in steps or ()))


def _ch(channel: str) -> str:
    return CHANNEL_LABELS.get(channel, channel)


def _delay(step: StepKey) -> str:
    if step.after_seconds is None:
        return "no delay"
    return f"after {format_duration(timedelta(seconds=step.after_seconds))}" + (
        f" unless {step.unless_status}" if step.unless_status else "")


def describe(key: PlanKey) -> str:
    """'SMS first → email fallback' (or 'suppressed')."""
    if key.suppressed or not key.steps:
        return "suppressed"
    return " → ".join(f"{_ch(s.channel)} {s.mode}" + (" (held back)" if s.deferred else "") for s in key.steps)


def classify(before: PlanKey, after: PlanKey) -> list[tuple[ChangeKind, str]]:
    """Every kind of change from `before` to `after`, with a sentence each; [] when the same."""
    if before == after:
        return []
    if after.suppressed and not before.suppressed:
        return [(ChangeKind.NEWLY_SUPPRESSED, f"newly suppressed (was {describe(before)})")]
    if before.suppressed and not after.suppressed:
        return [(ChangeKind.NO_LONGER_SUPPRESSED, f"no longer suppressed: now {describe(after)}")]
    out: list[tuple[ChangeKind, str]] = []
    b = {s.channel: s for s in before.steps}
    a = {s.channel: s for s in after.steps}
    for s in after.steps:
        if s.channel not in b:
            out.append((ChangeKind.CHANNEL_ADDED, f"{_ch(s.channel)} added ({s.mode})"))
    for s in before.steps:
        if s.channel not in a:
            out.append((ChangeKind.CHANNEL_REMOVED, f"{_ch(s.channel)} removed (was {s.mode})"))
    if before.steps and after.steps and before.steps[0].channel != after.steps[0].channel:
        out.append((ChangeKind.FIRST_CHANNEL_CHANGED,
                    f"first channel: {_ch(before.steps[0].channel)} → {_ch(after.steps[0].channel)}"))
    common_before = [s.channel for s in before.steps if s.channel in a]
    common_after = [s.channel for s in after.steps if s.channel in b]
    if common_before != common_after:
        out.append((ChangeKind.ORDER_CHANGED, f"order: {' → '.join(map(_ch, common_before))} becomes "
                                              f"{' → '.join(map(_ch, common_after))}"))
    for channel in common_after:
        old, new = b[channel], a[channel]
        if old.mode != new.mode:
            out.append((ChangeKind.MODE_CHANGED, f"{_ch(channel)}: {old.mode} → {new.mode}"))
        if (old.after_seconds, old.unless_status) != (new.after_seconds, new.unless_status):
            out.append((ChangeKind.DELAY_CHANGED, f"{_ch(channel)}: {_delay(old)} → {_delay(new)}"))
        if old.provider != new.provider:
            out.append((ChangeKind.PROVIDER_CHANGED,
                        f"{_ch(channel)}: provider {old.provider or 'default'} → {new.provider or 'default'}"))
    newly_held = [s.channel for s in after.steps if s.deferred and not (s.channel in b and b[s.channel].deferred)]
    if newly_held:
        out.append((ChangeKind.NEWLY_DEFERRED, f"newly held back: {', '.join(map(_ch, newly_held))}"))
    released = [s.channel for s in before.steps if s.deferred and s.channel in a and not a[s.channel].deferred]
    if released:
        out.append((ChangeKind.NO_LONGER_DEFERRED, f"no longer held back: {', '.join(map(_ch, released))}"))
    # Only a plan naming one channel twice gets here with nothing found: say what it becomes.
    return out or [(ChangeKind.ORDER_CHANGED, f"plan: {describe(before)} becomes {describe(after)}")]
