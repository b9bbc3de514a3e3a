"""Rule conditions: a fixed set of operators over named facts, compiled once to closures.

Grammar (YAML)::

    when: always                                   # or leave `when` out
    when: {fact: presence, is: offline}
    when: {all: [{fact: category.critical, is: true}, {fact: presence, is: offline}]}
    when: {any: [...]}           when: {not: {...}}
    when: {fact: sms_segments, gt: {threshold: sms_max_segments}}

Operators: is, is_not (every fact); in, not_in (enum facts, a list of values); gt, gte, lt, lte
(integer facts; the value may be ``{threshold: name}`` to read a number from ``thresholds``).
Fact names, operators and values are all checked at load time, so a typo is an error in the
document rather than a rule that silently never matches. Nothing is ever eval'd.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .constants import CHANNELS, CONSENT_KEYS, LIFECYCLE_VALUES, PRESENCE_VALUES, SMS_ENCODINGS, URGENCIES
from .quoting import quote

Condition = Callable[[Mapping[str, Any]], bool]

BOOL, INT, ENUM = "bool", "int", "enum"


@dataclass(frozen=True)
class FactSpec:
    kind: str
    values: tuple[str, ...] = ()
    doc: str = ""


_STATIC_FACTS: dict[str, FactSpec] = {
    "urgency": FactSpec(ENUM, URGENCIES, "urgency given by the sender"),
    "presence": FactSpec(ENUM, PRESENCE_VALUES, "online: live stream open or heartbeat within the window"),
    "lifecycle": FactSpec(ENUM, LIFECYCLE_VALUES, "from last_active_at vs dormant/churned thresholds"),
    "in_quiet_hours": FactSpec(BOOL, (), "now is inside the recipient's quiet hours, in their timezone"),
    "expired": FactSpec(BOOL, (), "expires_at is at or before now"),
    "sms_encoding": FactSpec(ENUM, SMS_ENCODINGS, "GSM-7 or UCS-2 for the SMS text"),
    "sms_segments": FactSpec(INT, (), "number of SMS segments the text needs"),
    "content_bytes": FactSpec(INT, (), "size of the content in bytes"),
    "has_rich_media": FactSpec(BOOL, (), "the message carries an image / rich content"),
    "in_app_count_day": FactSpec(INT, (), "in-app messages shown to the user today"),
    "in_app_count_week": FactSpec(INT, (), "in-app messages shown to the user this week"),
    "message_count_day": FactSpec(INT, (), "messages of capped categories to the user today (local day)"),
    "message_count_week": FactSpec(INT, (), "messages of capped categories to the user this ISO week"),
}
for _ch in CHANNELS:
    _STATIC_FACTS[f"reachable.{_ch}"] = FactSpec(BOOL, (), f"a usable {_ch} address exists")
    _STATIC_FACTS[f"available.{_ch}"] = FactSpec(BOOL, (), f"{_ch} is reachable and consented")
    _STATIC_FACTS[f"preference.{_ch}"] = FactSpec(
        BOOL, (), f"the user has not turned off {_ch} for this category (always true when it is locked)")
for _key in CONSENT_KEYS:
    _STATIC_FACTS[f"consent.{_key}"] = FactSpec(BOOL, (), f"consent for {_key} (or the policy default)")

_OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    BOOL: ("is", "is_not"),
    ENUM: ("is", "is_not", "in", "not_in"),
    INT: ("is", "is_not", "gt", "gte", "lt", "lte"),
}
ALL_OPERATORS = ("is", "is_not", "in", "not_in", "gt", "gte", "lt", "lte")


def fact_specs(categories: Mapping[str, Mapping[str, bool]]) -> dict[str, FactSpec]:
    """The facts a policy's conditions may name: the static set plus its category attributes."""
    specs = dict(_STATIC_FACTS)
    specs["category"] = FactSpec(ENUM, tuple(sorted(categories)), "message category")
    attributes = sorted({a for attrs in categories.values() for a in attrs})
    for attr in attributes:
        specs[f"category.{attr}"] = FactSpec(BOOL, (), f"the category's '{attr}' attribute")
    return specs


class _Compiler:
    def __init__(self, specs: Mapping[str, FactSpec], thresholds: Mapping[str, Any], errors: list[str],
                 prefix: str, known: Mapping[str, Any] | None = None):
        self.specs = specs
        self.thresholds = thresholds
        self.errors = errors
        self.prefix = prefix
        self.known = known or {}  # facts fixed in advance: their tests are folded to constants

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{self.prefix}field '{path}': {message}")

    def compile(self, node: Any, path: str) -> Condition:
        if node is None or node == "always":
            return _always
        if not isinstance(node, Mapping):
            self.error(path, f"expected a mapping ({{fact: ..., is: ...}} / all / any / not), got {quote(node)}")
            return _never
        if "fact" in node:
            return self._leaf(node, path)
        if len(node) != 1:
            self.error(path, f"expected exactly one of all / any / not / fact, got {quote(sorted(map(str, node)))}")
            return _never
        (key, value), = node.items()
        if key == "not":
            inner = self.compile(value, f"{path}.not")
            if inner is _always or inner is _never:
                return _never if inner is _always else _always
            return lambda f: not inner(f)
        if key not in ("all", "any"):
            self.error(path, f"unknown operator {quote(key)}")
            return _never
        if not isinstance(value, list) or not value:
            self.error(f"{path}.{key}", "expected a non-empty list of conditions")
            return _never
        parts = tuple(self.compile(v, f"{path}.{key}[{i}]") for i, v in enumerate(value))
        return _all(parts) if key == "all" else _any(parts)

    def _leaf(self, node: Mapping[str, Any], path: str) -> Condition:
        name = node["fact"]
        spec = self.specs.get(name) if isinstance(name, str) else None
        if spec is None:
            self.error(f"{path}.fact", f"unknown fact {quote(name)}")
            return _never
        ops = [k for k in node if k != "fact"]
        if len(ops) != 1:
            self.error(path, f"fact '{name}' needs exactly one operator, got {quote(sorted(map(str, ops)))}")
            return _never
        op = ops[0]
        if op not in ALL_OPERATORS:
            self.error(f"{path}.{op}", f"unknown operator {quote(op)}")
            return _never
        if op not in _OPS_BY_KIND[spec.kind]:
            self.error(f"{path}.{op}", f"operator '{op}' does not apply to {spec.kind} fact '{name}'")
            return _never
        value = self._value(spec, op, node[op], f"{path}.{op}", name)
        if value is _INVALID:
            return _never
        test = _leaf_closure(name, op, value)
        if name in self.known:
            return _always if test(self.known) else _never
        return test

    def _value(self, spec: FactSpec, op: str, raw: Any, path: str, name: str) -> Any:
        if op in ("in", "not_in"):
            if not isinstance(raw, list) or not raw:
                self.error(path, "expected a non-empty list of values")
                return _INVALID
            bad = [v for v in raw if v not in spec.values]
            if bad:
                allowed = ", ".join(spec.values)
                self.error(path, f"unknown value(s) {quote(bad)} for fact '{name}' (allowed: {allowed})")
                return _INVALID
            return frozenset(raw)
        if spec.kind == BOOL:
            if not isinstance(raw, bool):
                self.error(path, f"fact '{name}' is true/false, got {quote(raw)}")
                return _INVALID
            return raw
        if spec.kind == ENUM:
            if raw not in spec.values:
                allowed = ", ".join(spec.values)
                self.error(path, f"unknown value {quote(raw)} for fact '{name}' (allowed: {allowed})")
                return _INVALID
            return raw
        if isinstance(raw, Mapping) and set(raw) == {"threshold"}:
            key = raw["threshold"]
            number = self.thresholds.get(key)
            if not isinstance(number, int) or isinstance(number, bool):
                self.error(path, f"unknown numeric threshold {quote(key)}")
                return _INVALID
            return number
        if not isinstance(raw, int) or isinstance(raw, bool):
            self.error(path, f"fact '{name}' is a number, got {quote(raw)}")
            return _INVALID
        return raw


_INVALID = object()


def _always(_f: Mapping[str, Any]) -> bool:
    return True


def _never(_f: Mapping[str, Any]) -> bool:
    return False


_PAIR_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "is": operator.eq, "is_not": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
    "lte": operator.le, "in": lambda a, v: a in v, "not_in": lambda a, v: a not in v,
}


def _leaf_closure(name: str, op: str, v: Any) -> Condition:
    test = _leaf_test(name, op, v)
    test.leaf = (name, op, v)  # type: ignore[attr-defined]  # lets _all fuse two leaves into one call
    return test


def _leaf_test(name: str, op: str, v: Any) -> Condition:
    # One small closure per operator: no dispatch at evaluation time.
    if op == "is":
        return lambda f: f[name] == v
    if op == "is_not":
        return lambda f: f[name] != v
    if op == "in":
        return lambda f: f[name] in v
    if op == "not_in":
        return lambda f: f[name] not in v
    if op == "gt":
        return lambda f: f[name] > v
    if op == "gte":
        return lambda f: f[name] >= v
    if op == "lt":
        return lambda f: f[name] < v
    return lambda f: f[name] <= v


def _all(parts: tuple[Condition, ...]) -> Condition:
    if _never in parts:
        return _never
    parts = tuple(p for p in parts if p is not _always)
    if not parts:
        return _always
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        leaf_a, leaf_b = getattr(a, "leaf", None), getattr(b, "leaf", None)
        if leaf_a and leaf_b:
            # The most common shape ("critical is false and presence is offline"): one call.
            (n1, o1, v1), (n2, o2, v2) = leaf_a, leaf_b
            op1, op2 = _PAIR_OPS[o1], _PAIR_OPS[o2]
            return lambda f: op1(f[n1], v1) and op2(f[n2], v2)
        return lambda f: a(f) and b(f)

    def check(f: Mapping[str, Any]) -> bool:
        for part in parts:
            if not part(f):
                return False
        return True

    return check


def _any(parts: tuple[Condition, ...]) -> Condition:
    if _always in parts:
        return _always
    parts = tuple(p for p in parts if p is not _never)
    if not parts:
        return _never
    if len(parts) == 1:
        return parts[0]

    def check(f: Mapping[str, Any]) -> bool:
        for part in parts:
            if part(f):
                return True
        return False

    return check


def compile_condition(node: Any, specs: Mapping[str, FactSpec], thresholds: Mapping[str, Any],
                      errors: list[str], prefix: str = "", path: str = "when",
                      known: Mapping[str, Any] | None = None) -> Condition:
    """Compile a `when` node. Problems are appended to ``errors``; the result is then unusable.

    ``known`` fixes some facts in advance (the engine passes a category's facts): tests on them
    are folded away, so a rule specialised for one category checks only what can still vary.
    """
    return _Compiler(specs, thresholds, errors, prefix, known).compile(node, path)


def is_always(condition: Condition) -> bool:
    return condition is _always


def is_never(condition: Condition) -> bool:
    return condition is _never
