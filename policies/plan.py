"""The output of a routing decision: an ordered plan of steps plus why every other channel is out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from .constants import StepMode

_T = TypeVar("_T")


def fast_new(cls: type[_T], values: dict[str, Any]) -> _T:
    """Build a frozen dataclass without its generated __init__ (which pays object.__setattr__ per
    field). Only for the engine's hot path, which always passes every field."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


def _seconds(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


@dataclass(frozen=True)
class Step:
    channel: str  # "in_app" | "push" | "sms" | "email"
    mode: StepMode  # how it starts relative to the step before (constants.StepMode)
    provider: str | None = None
    after: timedelta | None = None
    unless_status: str | None = None
    not_before: datetime | None = None  # quiet-hours deferral (UTC)
    hold_ttl: timedelta | None = None  # in-app held for the next session, at most this long
    reason: str = ""
    # In-app over its frequency cap for a user in the app: an inbox entry and an unread-count
    # update, but no live display (no toast, no banner).
    quiet: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "mode": str(self.mode),
            "provider": self.provider,
            "after_seconds": _seconds(self.after),
            "unless_status": self.unless_status,
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "hold_ttl_seconds": _seconds(self.hold_ttl),
            "reason": self.reason,
            "quiet": self.quiet,
        }


@dataclass(frozen=True)
class Exclusion:
    channel: str
    rule: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"channel": self.channel, "rule": self.rule, "reason": self.reason}


@dataclass(frozen=True)
class RuleMatch:
    rule_id: str
    title: str
    effect: str

    def to_dict(self) -> dict[str, str]:
        return {"rule_id": self.rule_id, "title": self.title, "effect": self.effect}


@dataclass(frozen=True)
class RoutePlan:
    policy_version: str
    steps: tuple[Step, ...]
    excluded: tuple[Exclusion, ...]
    suppressed: bool
    suppressed_reasons: tuple[str, ...]
    trace: tuple[RuleMatch, ...]
    facts: dict[str, Any] = field(hash=False, compare=True)
    requires: tuple[str, ...] = ()
    # When read confirmation is required: {"remind_after_seconds", "escalate_after_seconds"}.
    confirmation: dict[str, int] | None = field(default=None, hash=False)

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(s.channel for s in self.steps)

    def excluded_by(self, channel: str) -> Exclusion | None:
        for e in self.excluded:
            if e.channel == channel:
                return e
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "steps": [s.to_dict() for s in self.steps],
            "excluded": [e.to_dict() for e in self.excluded],
            "suppressed": self.suppressed,
            "suppressed_reasons": list(self.suppressed_reasons),
            "trace": [t.to_dict() for t in self.trace],
            "facts": dict(self.facts),
            "requires": list(self.requires),
            "confirmation": dict(self.confirmation) if self.confirmation else None,
        }
