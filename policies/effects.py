"""Rule effects (`then:`): parsed and checked once at load into an immutable `Effects` value.

    exclude: [in_app]                    channel(s) must not be used
    route:                               ordered channels; the last matching rule with a route wins
      - sms                              (mode fallback unless it ends up first)
      - {channel: email, mode: parallel}
      - {channel: push, mode: escalate, after: 10m, unless: read}
    require: [email]                     must be in the plan, else the message is suppressed
    require_any: [sms, email, push]      at least one of them, else suppressed
    hold_in_app: 72h                     offline user: in-app waits for the next session (TTL)
    defer_in_quiet_hours: [push, sms]    not before the end of quiet hours
    cap_in_app: true                     or {per_day: 3, per_week: 10, over_cap: quiet}; default: thresholds
                                         over_cap: exclude (default: no in-app at all) | quiet (a
                                         user in the app gets a quiet inbox entry, no live display)
    cap_messages: {per_day: 4, per_week: 12, over: defer}
                                         every channel together, per local day / ISO week;
                                         over the cap: defer (to the next window) or suppress
    suppress: true                       send nothing
    require_confirmation: [delivery, read]
                                         or {of: [delivery, read], remind_after: 3d, escalate_after: 7d}:
                                         not acknowledged `remind_after` the send, the notice is sent
                                         again; not acknowledged `escalate_after` it, it is escalated
    provider: {sms: twilio}              pin a provider per channel
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .constants import (
    CHANNELS,
    ESCALATION_STATUSES,
    IN_APP,
    IN_APP_OVER_CAP_EXCLUDE,
    IN_APP_OVER_CAP_MODES,
    IN_APP_OVER_CAP_QUIET,
    OVER_CAP_MODES,
    ROUTE_MODES,
    StepMode,
)
from .quoting import quote

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

EFFECT_KEYS = (
    "exclude", "route", "require", "require_any", "hold_in_app", "defer_in_quiet_hours", "cap_in_app",
    "cap_messages", "suppress", "require_confirmation", "provider",
)
_CONFIRMATIONS = {"delivery": "delivery_confirmation", "read": "read_confirmation"}
MAX_CONFIRM_WAIT = timedelta(days=365)  # a notice's escalation must fall within its link's lifetime scale


def parse_duration(raw: Any) -> timedelta | None:
    """"90s", "10m", "2h", "3d", "1w" or a number of seconds. None when unreadable or not positive."""
    if isinstance(raw, bool):
        return None
    try:
        if isinstance(raw, int):
            return timedelta(seconds=raw) if raw > 0 else None
        if isinstance(raw, str):
            m = _DURATION.match(raw)
            if m and int(m.group(1)) > 0:
                return timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    except OverflowError:  # "99999999999w": no datetime can be that far away
        return None
    return None


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class RouteEntry:
    channel: str
    mode: StepMode = StepMode.FALLBACK
    after: timedelta | None = None
    unless: str | None = None

    def describe(self) -> str:
        text = f"{self.channel} {self.mode}"
        if self.mode == StepMode.ESCALATE:
            text += f" after {format_duration(self.after)} unless {self.unless}"  # type: ignore[arg-type]
        return text


@dataclass(frozen=True, slots=True)
class MessageCap:
    """A cross-channel cap: at most `per_day` messages a local day and `per_week` an ISO
    week (None = no limit), and what happens over it (`over`: defer or suppress)."""

    per_day: int | None
    per_week: int | None
    over: str

    def describe(self) -> str:
        limits = [f"{n}/{unit}" for n, unit in ((self.per_day, "day"), (self.per_week, "week")) if n is not None]
        return f"cap messages at {', '.join(limits)} across channels; over the cap: {self.over}"


@dataclass(frozen=True)
class Effects:
    exclude: tuple[str, ...] = ()
    route: tuple[RouteEntry, ...] | None = None
    require: tuple[str, ...] = ()
    require_any: tuple[str, ...] = ()
    hold_in_app: timedelta | None = None
    defer_in_quiet_hours: tuple[str, ...] = ()
    cap_in_app: tuple[int, int] | None = None
    # What over the in-app cap means for a user in the app (IN_APP_OVER_CAP_MODES). `exclude` by default, so
    # a stored policy version keeps the meaning it was approved with.
    cap_over: str = IN_APP_OVER_CAP_EXCLUDE
    cap_messages: MessageCap | None = None
    suppress: bool = False
    confirmations: tuple[str, ...] = ()
    confirm_timers: tuple[timedelta, timedelta] | None = None  # (remind_after, escalate_after)
    providers: Mapping[str, str] = field(default_factory=dict)
    summary: str = ""
    # The two most common kinds of rule; the engine takes a shortcut for them.
    exclude_only: bool = False
    route_only: bool = False


class _Parser:
    def __init__(self, errors: list[str], prefix: str, thresholds: Mapping[str, Any]):
        self.errors = errors
        self.prefix = prefix
        self.thresholds = thresholds

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{self.prefix}field '{path}': {message}")

    def channels(self, raw: Any, path: str) -> tuple[str, ...]:
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, list) or not items:
            self.error(path, "expected a channel or a non-empty list of channels")
            return ()
        good = []
        for item in items:
            if item not in CHANNELS:
                self.error(path, f"unknown channel {quote(item)}")
            elif item in good:
                self.error(path, f"channel {quote(item)} listed twice")
            else:
                good.append(item)
        return tuple(good)

    def route_entry(self, raw: Any, path: str) -> RouteEntry | None:
        if isinstance(raw, str):
            return RouteEntry(raw) if self.channels(raw, path) else None
        if not isinstance(raw, Mapping):
            self.error(path, f"expected a channel name or a mapping, got {quote(raw)}")
            return None
        unknown = sorted(set(raw) - {"channel", "mode", "after", "unless"})
        if unknown:
            self.error(path, f"unknown key(s) {quote(unknown)}")
        if not self.channels(raw.get("channel"), f"{path}.channel"):
            return None
        mode = raw.get("mode", StepMode.FALLBACK)
        if mode not in ROUTE_MODES:
            self.error(f"{path}.mode", f"unknown mode {quote(mode)} (allowed: {', '.join(ROUTE_MODES)})")
            return None
        after = unless = None
        if mode == StepMode.ESCALATE:
            after = parse_duration(raw.get("after"))
            if after is None:
                self.error(f"{path}.after", f"escalate needs a duration like '10m', got {quote(raw.get('after'))}")
            unless = raw.get("unless")
            if unless not in ESCALATION_STATUSES:
                allowed = ", ".join(ESCALATION_STATUSES)
                self.error(f"{path}.unless", f"unknown status {quote(unless)} (allowed: {allowed})")
            if after is None or unless not in ESCALATION_STATUSES:
                return None
        elif "after" in raw or "unless" in raw:
            self.error(path, "'after' and 'unless' only apply to mode escalate")
        return RouteEntry(raw["channel"], StepMode(mode), after, unless)

    def parse(self, then: Any) -> Effects:
        if not isinstance(then, Mapping) or not then:
            self.error("then", "expected a non-empty mapping of effects")
            return Effects()
        for key in then:
            if key not in EFFECT_KEYS:
                self.error(f"then.{key}", f"unknown effect {quote(key)} (allowed: {', '.join(EFFECT_KEYS)})")
        kw: dict[str, Any] = {}
        parts: list[str] = []
        for key in ("exclude", "require", "require_any", "defer_in_quiet_hours"):
            if key in then:
                kw[key] = self.channels(then[key], f"then.{key}")
                parts.append(f"{key} {', '.join(kw[key])}")
        if "route" in then:
            raw = then["route"]
            if not isinstance(raw, list) or not raw:
                self.error("then.route", "expected a non-empty list of channels")
            else:
                entries = [self.route_entry(r, f"then.route[{i}]") for i, r in enumerate(raw)]
                route = tuple(e for e in entries if e is not None)
                seen = [e.channel for e in route]
                if len(set(seen)) != len(seen):
                    self.error("then.route", "a channel appears twice")
                kw["route"] = route
                parts.append("route " + " > ".join(e.describe() for e in route))
        if "hold_in_app" in then:
            ttl = parse_duration(then["hold_in_app"])
            if ttl is None:
                self.error("then.hold_in_app", f"expected a duration like '72h', got {quote(then['hold_in_app'])}")
            kw["hold_in_app"] = ttl
            if ttl is not None:
                parts.append(f"hold in_app up to {format_duration(ttl)}")
        if "cap_in_app" in then:
            kw["cap_in_app"] = self.cap(then["cap_in_app"])
            raw = then["cap_in_app"]
            over = raw.get("over_cap", IN_APP_OVER_CAP_EXCLUDE) if isinstance(raw, Mapping) else IN_APP_OVER_CAP_EXCLUDE
            if over not in IN_APP_OVER_CAP_MODES:
                self.error("then.cap_in_app.over_cap",
                           f"expected one of {', '.join(IN_APP_OVER_CAP_MODES)}, got {quote(over)}")
            else:
                kw["cap_over"] = over
            if kw["cap_in_app"]:
                parts.append("cap in_app at {}/day, {}/week".format(*kw["cap_in_app"])
                             + (" (quiet inbox entry over it)" if over == IN_APP_OVER_CAP_QUIET else ""))
        if "cap_messages" in then:
            kw["cap_messages"] = self.message_cap(then["cap_messages"])
            if kw["cap_messages"]:
                parts.append(kw["cap_messages"].describe())
        if "suppress" in then:
            if then["suppress"] is not True:
                self.error("then.suppress", "expected true")
            kw["suppress"] = then["suppress"] is True
            parts.append("suppress")
        if "require_confirmation" in then:
            raw = then["require_confirmation"]
            if isinstance(raw, Mapping):
                raw = self.confirm_timers(raw, kw)
            raw = [raw] if isinstance(raw, str) else raw
            if not isinstance(raw, list) or not raw or any(r not in _CONFIRMATIONS for r in raw):
                self.error("then.require_confirmation", f"expected a list among delivery, read; got {quote(raw)}")
            else:
                kw["confirmations"] = tuple(_CONFIRMATIONS[r] for r in raw)
                parts.append("require " + ", ".join(kw["confirmations"]))
                if kw.get("confirm_timers"):
                    parts.append("remind after {}, escalate after {}".format(
                        *(format_duration(t) for t in kw["confirm_timers"])))
        if "provider" in then:
            raw = then["provider"]
            if not isinstance(raw, Mapping) or not all(isinstance(v, str) and v for v in raw.values()):
                self.error("then.provider", "expected a mapping channel -> provider name")
            else:
                self.channels(list(raw), "then.provider")
                kw["providers"] = dict(raw)
                parts.append("provider " + ", ".join(f"{k}={v}" for k, v in raw.items()))
        return Effects(summary="; ".join(parts), exclude_only=set(then) == {"exclude"},
                       route_only=set(then) == {"route"} and "route" in kw, **kw)

    def confirm_timers(self, raw: Mapping, kw: dict[str, Any]) -> Any:
        """The mapping form of require_confirmation; returns its `of` list."""
        path = "then.require_confirmation"
        unknown = sorted(set(raw) - {"of", "remind_after", "escalate_after"})
        if unknown:
            self.error(path, f"unknown key(s) {quote(unknown)}")
        remind, escalate = parse_duration(raw.get("remind_after")), parse_duration(raw.get("escalate_after"))
        if remind is None or escalate is None or escalate > MAX_CONFIRM_WAIT:
            self.error(path, "remind_after and escalate_after need durations like '3d', at most 365d")
        elif escalate <= remind:
            self.error(f"{path}.escalate_after", "must be later than remind_after")
        else:
            kw["confirm_timers"] = (remind, escalate)
        return raw.get("of")

    def cap(self, raw: Any) -> tuple[int, int] | None:
        day = self.thresholds.get("in_app_cap_per_day")
        week = self.thresholds.get("in_app_cap_per_week")
        if raw is True:
            return (day, week) if isinstance(day, int) and isinstance(week, int) else None
        if isinstance(raw, Mapping) and set(raw) <= {"per_day", "per_week", "over_cap"}:
            day, week = raw.get("per_day", day), raw.get("per_week", week)
            if all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (day, week)):
                return day, week
        self.error("then.cap_in_app",
                   f"expected true or {{per_day: N, per_week: N, over_cap: quiet|exclude}}, got {quote(raw)}")
        return None


    def message_cap(self, raw: Any) -> MessageCap | None:
        expected = "expected {per_day: N, per_week: N, over: defer|suppress} (at least one limit)"
        if not isinstance(raw, Mapping):
            self.error("then.cap_messages", f"{expected}, got {quote(raw)}")
            return None
        unknown = sorted(map(str, set(raw) - {"per_day", "per_week", "over"}))
        if unknown:
            self.error("then.cap_messages", f"unknown key(s) {quote(unknown)}; {expected}")
        limits = []
        for key in ("per_day", "per_week"):
            value = raw.get(key)
            if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                self.error(f"then.cap_messages.{key}", f"expected a number >= 0, got {quote(value)}")
                return None
            limits.append(value)
        if limits == [None, None]:
            self.error("then.cap_messages", expected)
            return None
        over = raw.get("over")
        if over not in OVER_CAP_MODES:
            self.error("then.cap_messages.over", f"expected one of {', '.join(OVER_CAP_MODES)}, got {quote(over)}")
            return None
        return MessageCap(limits[0], limits[1], over)


def parse_effects(then: Any, errors: list[str], prefix: str, thresholds: Mapping[str, Any]) -> Effects:
    effects = _Parser(errors, prefix, thresholds).parse(then)
    if effects.hold_in_app is not None and IN_APP in effects.exclude:
        errors.append(f"{prefix}field 'then.hold_in_app': cannot hold in_app and exclude it in the same rule")
    return effects
