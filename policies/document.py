"""Policy documents: YAML in, a validated and compiled `Policy` out.

Validation collects every problem rather than stopping at the first, and each message names
the rule id and the field, e.g. ``rule 'otp-by-sms': field 'then.exclude': unknown channel 'fax'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from channels import DECLARED

from . import yaml_text
from .conditions import Condition, FactSpec, compile_condition, fact_specs, is_never
from .constants import CHANNELS, CONSENT_KEYS, MARKETING, REQUIRED_CATEGORIES, REQUIRED_CATEGORY_ATTRIBUTES
from .effects import Effects, RouteEntry, parse_effects
from .labels import Labels, parse_labels
from .plan import Exclusion, RuleMatch
from .quoting import quote
from .uncertain import DEFAULT as UNCERTAIN_DEFAULT
from .uncertain import UncertainAction
from .uncertain import action_for as uncertain_action_for
from .uncertain import check as check_uncertain

CATEGORIES_DEFAULT_PATH = Path(__file__).with_name("default.yaml")

TOP_LEVEL_KEYS = ("version", "description", "consent_defaults", "categories", "preferences", "thresholds",
                  "rules", "uncertain_sends", "labels")
# The `preferences` section's keys, which are also the category attributes it sets (so
# conditions can read them as `category.locked` / `category.unsubscribable`); a category may
# not set them itself.
PREFERENCE_KEYS = ("locked", "unsubscribable")
RULE_KEYS = ("id", "title", "description", "cites", "when", "then", "reason")
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")

# Missing consent keys: transactional channels are allowed, marketing needs an explicit yes.
# (Each channel says its own default: an opt-in channel's is False.)
DEFAULT_CONSENTS: dict[str, bool] = {**{spec.name: spec.consent_default for spec in DECLARED}, MARKETING: False}

# name -> (check, description); every key is required.
_THRESHOLDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "presence_window_seconds": (lambda v: _is_int(v) and v > 0, "a positive number of seconds"),
    "dormant_after_days": (lambda v: _is_int(v) and v > 0, "a positive number of days"),
    "churned_after_days": (lambda v: _is_int(v) and v > 0, "a positive number of days"),
    "in_app_cap_per_day": (lambda v: _is_int(v) and v >= 0, "a number >= 0"),
    "in_app_cap_per_week": (lambda v: _is_int(v) and v >= 0, "a number >= 0"),
    "sms_max_segments": (lambda v: _is_int(v) and v >= 1, "a number >= 1"),
    "quiet_hours": (
        lambda v: isinstance(v, list) and len(v) == 2
        and all(isinstance(x, str) and _HHMM.match(x) for x in v),
        'a pair of "HH:MM" times, e.g. ["22:00", "08:00"]',
    ),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# One rule as the engine's inner loop sees it: (specialised condition, rule, prebuilt exclusions
# when the rule only excludes, its route when the rule only routes).
_Entry = tuple[Condition, "Rule", tuple[Exclusion, ...], "tuple[RouteEntry, ...] | None"]


class PolicyError(ValueError):
    """An invalid policy document. ``errors`` lists every problem found."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    description: str
    cites: tuple[str, ...]
    when: Condition = field(repr=False, compare=False)
    effects: Effects = field(compare=False)
    reason_template: str = ""
    match: RuleMatch = field(init=False, repr=False, compare=False)
    static_reason: str | None = field(init=False, repr=False, compare=False)
    # For rules whose only effect is `exclude` with a fixed reason: the Exclusions, prebuilt.
    static_exclusions: tuple[Exclusion, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once here instead of once per decision: the trace entry never changes, and
        # neither does a reason without placeholders.
        object.__setattr__(self, "match", RuleMatch(self.id, self.title, self.effects.summary))
        template = self.reason_template or self.title
        static = None if "{" in template else template
        object.__setattr__(self, "static_reason", static)
        exclusions = ()
        if static is not None and self.effects.exclude_only:
            exclusions = tuple(Exclusion(ch, self.id, static) for ch in self.effects.exclude)
        object.__setattr__(self, "static_exclusions", exclusions)

    def reason(self, facts: Mapping[str, Any], thresholds: Mapping[str, Any]) -> str:
        """The rule's sentence with ``{fact}`` / ``{threshold}`` placeholders filled in."""
        template = self.reason_template or self.title
        if "{" not in template:
            return template

        def fill(m: re.Match[str]) -> str:
            key = m.group(1)
            return str(facts[key] if key in facts else thresholds[key])

        return _PLACEHOLDER.sub(fill, template)


@dataclass(frozen=True, eq=False)  # identity semantics: a compiled policy is used as a cache key
class Policy:
    version: str
    document: dict[str, Any] = field(repr=False, compare=False)
    categories: dict[str, dict[str, bool]] = field(repr=False)
    thresholds: dict[str, Any] = field(repr=False)
    consent_defaults: dict[str, bool] = field(repr=False)
    rules: tuple[Rule, ...] = field(repr=False)
    facts: dict[str, FactSpec] = field(repr=False, compare=False)
    # {"security_alert": {"category.critical": True, ...}}: merged into the facts of each decision.
    category_facts: dict[str, dict[str, bool]] = field(repr=False, compare=False, default_factory=dict)
    # (presence window, dormant after, churned after) as timedeltas, and the default quiet-hours
    # window in minutes after midnight: what derive() compares against, converted once.
    timing: tuple[timedelta, timedelta, timedelta, tuple[int, int]] = field(
        repr=False, compare=False, default=(timedelta(0), timedelta(0), timedelta(0), (0, 0)))
    # category -> an _Entry for each rule that can match a message of that category, in
    # document order: the engine's inner loop, flattened and specialised.
    rules_by_category: dict[str, tuple[_Entry, ...]] = field(
        repr=False, compare=False, default_factory=dict)
    # Whether any rule's `when` reads the in-app counters. When none does, the counters can
    # only matter through a cap on in-app, so a caller may skip counting for a plan with no
    # in-app step (see `needs_in_app_counts`).
    conditions_read_in_app_counts: bool = field(repr=False, compare=False, default=True)
    # What to do with a send whose outcome is unknown (policies/uncertain.py).
    uncertain_sends: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    # Categories whose preferences the user cannot change (`preferences.locked`), and those
    # whose emails carry RFC 8058 one-click unsubscribe (`preferences.unsubscribable`).
    locked_categories: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    unsubscribable_categories: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    # Categories a `cap_messages` rule can match: the messages counted against the
    # cross-channel cap, and the only ones for which counting is worth a query.
    capped_categories: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    conditions_read_message_counts: bool = field(repr=False, compare=False, default=False)
    # Human labels of categories and channels per locale (the optional `labels` section).
    labels: Labels = field(repr=False, compare=False, default_factory=Labels)

    def has_category(self, name: str) -> bool:
        return name in self.categories

    def uncertain_send_action(self, category: str) -> UncertainAction:
        return uncertain_action_for(self.uncertain_sends or UNCERTAIN_DEFAULT, category,
                                    self.categories.get(category, {}))

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _read_source(source: str | Path | Mapping[str, Any]) -> Any:
    if isinstance(source, Mapping):
        return source
    if isinstance(source, Path):
        return yaml_text.load(source.read_text(encoding="utf-8"))
    if isinstance(source, str):
        if "\n" not in source and len(source) < 4096:
            try:
                path = Path(source)
                if path.is_file():
                    return yaml_text.load(path.read_text(encoding="utf-8"))
            except OSError:
                pass
            if source.endswith((".yaml", ".yml")):  # clearly meant as a path, not as YAML text
                raise FileNotFoundError(f"no such file: {source}")
        return yaml_text.load(source)
    raise TypeError(f"policy source must be a path, YAML text or a dict, not {type(source).__name__}")


def _check_categories(raw: Any, errors: list[str]) -> dict[str, dict[str, bool]]:
    if not isinstance(raw, Mapping) or not raw:
        errors.append("field 'categories': expected a mapping of category name -> attributes")
        return {}
    if len(raw) > MAX_CATEGORIES:
        errors.append(f"field 'categories': {len(raw)} categories; at most {MAX_CATEGORIES}")
    categories: dict[str, dict[str, bool]] = {}
    for name, attrs in raw.items():
        where = f"category '{name}'"
        if not isinstance(attrs, Mapping):
            errors.append(f"{where}: expected a mapping of attribute -> true/false")
            continue
        for attr, value in attrs.items():
            if not isinstance(value, bool):
                errors.append(f"{where}: field {quote(attr)}: expected true or false, got {quote(value)}")
        for attr in REQUIRED_CATEGORY_ATTRIBUTES:
            if attr not in attrs:
                errors.append(f"{where}: field '{attr}': missing (every category states "
                              f"{', '.join(REQUIRED_CATEGORY_ATTRIBUTES)})")
        categories[str(name)] = {str(k): v is True for k, v in attrs.items()}
    missing = [c for c in REQUIRED_CATEGORIES if c not in categories]
    if missing:
        errors.append(f"field 'categories': missing required categories: {', '.join(missing)}")
    # Every attribute is a fact; a category that does not mention one has it false.
    attributes = {a for attrs in categories.values() for a in attrs}
    return {name: {a: attrs.get(a, False) for a in sorted(attributes)} for name, attrs in categories.items()}


def _check_preferences(raw: Any, categories: dict[str, dict[str, bool]], errors: list[str],
                       ) -> tuple[frozenset[str], frozenset[str]]:
    """(locked, unsubscribable). Without the section: critical and legal categories are
    locked, nothing is unsubscribable. A critical category is always locked."""
    for name, attrs in categories.items():
        for attr in PREFERENCE_KEYS:
            if attr in attrs:
                errors.append(f"category '{name}': field '{attr}': set by the 'preferences' section, "
                              f"not by the category")
    if raw is None:
        locked = frozenset(n for n, a in categories.items() if a.get("critical") or a.get("legal"))
        return locked, frozenset()
    if not isinstance(raw, Mapping):
        errors.append("field 'preferences': expected a mapping with 'locked' and 'unsubscribable' lists")
        return frozenset(), frozenset()
    for key in raw:
        if key not in PREFERENCE_KEYS:
            errors.append(f"field 'preferences.{key}': unknown field (allowed: {', '.join(PREFERENCE_KEYS)})")
    lists = []
    for key in PREFERENCE_KEYS:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.append(f"field 'preferences.{key}': expected a list of category names")
            value = []
        for name in value:
            if name not in categories:
                errors.append(f"field 'preferences.{key}': unknown category {quote(name)}")
        lists.append(frozenset(v for v in value if v in categories))
    locked, unsubscribable = lists
    for name in sorted(locked & unsubscribable):
        errors.append(f"field 'preferences.unsubscribable': category '{name}' is locked; "
                      f"a locked category cannot offer unsubscribe")
    for name in sorted(n for n, a in categories.items() if a.get("critical") and n not in locked):
        errors.append(f"field 'preferences.locked': category '{name}' is critical and must be locked")
    return locked, unsubscribable


def _check_thresholds(raw: Any, errors: list[str]) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        errors.append("field 'thresholds': expected a mapping")
        return {}
    for key in raw:
        if key not in _THRESHOLDS:
            errors.append(f"field 'thresholds.{key}': unknown threshold (known: {', '.join(_THRESHOLDS)})")
    for key, (check, description) in _THRESHOLDS.items():
        if key not in raw:
            errors.append(f"field 'thresholds.{key}': missing ({description})")
        elif not check(raw[key]):
            errors.append(f"field 'thresholds.{key}': expected {description}, got {quote(raw[key])}")
    thresholds = dict(raw)
    dormant, churned = thresholds.get("dormant_after_days"), thresholds.get("churned_after_days")
    if _is_int(dormant) and _is_int(churned) and churned <= dormant:
        errors.append("field 'thresholds.churned_after_days': must be greater than dormant_after_days")
    return thresholds


def _check_consents(raw: Any, errors: list[str]) -> dict[str, bool]:
    consents = dict(DEFAULT_CONSENTS)
    if raw is None:
        return consents
    if not isinstance(raw, Mapping):
        errors.append("field 'consent_defaults': expected a mapping")
        return consents
    for key, value in raw.items():
        if key not in CONSENT_KEYS:
            known = ", ".join(CONSENT_KEYS)
            errors.append(f"field 'consent_defaults.{key}': unknown consent (known: {known})")
        elif not isinstance(value, bool):
            errors.append(f"field 'consent_defaults.{key}': expected true or false")
        else:
            consents[key] = value
    return consents


def _check_text(rule: Mapping[str, Any], key: str, prefix: str, errors: list[str]) -> str:
    value = rule.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.append(f"{prefix}field '{key}': required, a non-empty sentence")
        return ""
    return value.strip()


def _compile_rule(raw: Any, index: int, specs: Mapping[str, FactSpec], thresholds: Mapping[str, Any],
                  seen: set[str], errors: list[str]) -> Rule | None:
    if not isinstance(raw, Mapping):
        errors.append(f"rules[{index}]: expected a mapping")
        return None
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        errors.append(f"rules[{index}]: field 'id': required, lowercase letters, digits and dashes; "
                      f"got {quote(rule_id)}")
        rule_id = f"rules[{index}]"
    elif rule_id in seen:
        errors.append(f"rule '{rule_id}': field 'id': duplicate rule id")
    seen.add(rule_id)
    prefix = f"rule '{rule_id}': "
    for key in raw:
        if key not in RULE_KEYS:
            errors.append(f"{prefix}field {quote(key)}: unknown field (allowed: {', '.join(RULE_KEYS)})")
    title = _check_text(raw, "title", prefix, errors)
    description = _check_text(raw, "description", prefix, errors)
    cites = raw.get("cites")
    cites = [cites] if isinstance(cites, str) else cites
    if not isinstance(cites, list) or not cites or not all(isinstance(c, str) and c.strip() for c in cites):
        errors.append(f"{prefix}field 'cites': required, the guideline(s) this rule implements")
        cites = []
    reason = raw.get("reason", "")
    if not isinstance(reason, str):
        errors.append(f"{prefix}field 'reason': expected a sentence")
        reason = ""
    for name in _PLACEHOLDER.findall(reason):
        if name not in specs and name not in thresholds:
            errors.append(f"{prefix}field 'reason': unknown placeholder '{{{name}}}'")
    if "then" not in raw:
        errors.append(f"{prefix}field 'then': required")
    leaves = _condition_leaves(raw.get("when"))
    if leaves > MAX_CONDITION_LEAVES:
        errors.append(f"{prefix}field 'when': {leaves} conditions (`fact:` tests, aliases counted each "
                      f"time); at most {MAX_CONDITION_LEAVES}")
        when = compile_condition(None, specs, thresholds, errors, prefix)
    else:
        when = compile_condition(raw.get("when"), specs, thresholds, errors, prefix)
    effects = parse_effects(raw.get("then"), errors, prefix, thresholds)
    return Rule(rule_id, title, description, tuple(c.strip() for c in cites), when, effects, reason.strip())


# Caps on a document's size in the terms that cost to compile and to run. The shipped
# default.yaml has 16 categories, 28 rules and at most 4 leaves (`{fact: ..., is: ...}`) in a
# rule's `when`: these are 30x to 50x that, far above any real policy, and small enough that a
# document at every cap still compiles in about a second.
MAX_CATEGORIES = 500
MAX_RULES = 1_000
MAX_CONDITION_LEAVES = 200
# Specialising a rule per category (below) costs about (categories it tells apart) x (its
# leaves); past this much in a document (about 0.3 s), the remaining rules keep their general
# condition. The default policy spends under 1,000.
_SPECIALISE_BUDGET = 50_000


def _condition_leaves(node: Any) -> int:
    """How many `{fact: ...}` tests a `when` holds (aliases counted each time they are used)."""
    if isinstance(node, Mapping):
        return 1 if "fact" in node else sum(_condition_leaves(v) for v in node.values())
    if isinstance(node, list):
        return sum(_condition_leaves(v) for v in node)
    return 0


def _category_reads(node: Any, attrs: set[str], names: set[str]) -> None:
    """The category attributes (`category.x`) a valid `when` tests, and the category names it
    compares `category` with."""
    if isinstance(node, list):
        for v in node:
            _category_reads(v, attrs, names)
    elif isinstance(node, Mapping):
        fact = node.get("fact")
        if fact == "category":
            for op, value in node.items():
                if op != "fact":
                    names.update(value if isinstance(value, list) else [value])
        elif isinstance(fact, str) and fact.startswith("category."):
            attrs.add(fact)
        elif fact is None:
            for v in node.values():
                _category_reads(v, attrs, names)


def _rules_by_category(raw_rules: list[Any], rules: list[Rule], specs: Mapping[str, FactSpec],
                       thresholds: Mapping[str, Any], category_facts: Mapping[str, dict[str, bool]],
                       ) -> dict[str, tuple[_Entry, ...]]:
    """Each rule's condition specialised per category (category tests folded to constants);
    rules that cannot match a category are left out of its list. Purely a speed-up: the
    specialised condition is equivalent to the original for messages of that category.

    Each rule is compiled once more per *distinct* view it has of a category (the category
    attributes it tests, and the name when it names that category), not once per category: a
    rule that tests no category fact keeps its compiled `when` for all of them. The work is
    bounded by _SPECIALISE_BUDGET; a rule past it keeps its general condition for every
    category (correct, the facts of each decision hold the category's; only not folded)."""
    table: dict[str, list[_Entry]] = {name: [] for name in category_facts}
    budget = _SPECIALISE_BUDGET
    for raw, rule in zip(raw_rules, rules, strict=True):
        route = rule.effects.route if rule.effects.route_only else None
        attrs: set[str] = set()
        names: set[str] = set()
        _category_reads(raw.get("when"), attrs, names)
        general: _Entry = (rule.when, rule, rule.static_exclusions, route)
        cost = len(category_facts) * (len(attrs) + 1)
        if not attrs and not names or cost > budget:
            if not is_never(rule.when):
                for entries in table.values():
                    entries.append(general)
            continue
        budget -= cost
        ordered = sorted(attrs)
        views = {name: (name if name in names else None, tuple(facts.get(a) for a in ordered))
                 for name, facts in category_facts.items()}
        leaves = max(1, _condition_leaves(raw.get("when")))
        distinct = len(set(views.values()))
        if distinct * leaves > budget:
            for entries in table.values():
                entries.append(general)
            continue
        budget -= distinct * leaves
        compiled: dict[tuple[Any, ...], Condition] = {}
        for name, facts in category_facts.items():
            view = views[name]
            when = compiled.get(view)
            if when is None:
                when = compiled[view] = compile_condition(raw.get("when"), specs, thresholds, [],
                                                          known={"category": name, **facts})
            if not is_never(when):
                table[name].append((when, rule, rule.static_exclusions, route))
    return {name: tuple(entries) for name, entries in table.items()}


def _build(doc: Any) -> tuple[Policy | None, list[str]]:
    errors: list[str] = []
    if not isinstance(doc, Mapping):
        return None, ["document: expected a YAML mapping at the top level"]
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            errors.append(f"field {quote(key)}: unknown top-level field (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    version = doc.get("version")
    if isinstance(version, (date, datetime, int, float)) and not isinstance(version, bool):
        version = str(version)  # YAML reads 2026-01-01 as a date and 3 as an int; both are fine names
    if not isinstance(version, str) or not version.strip():
        errors.append("field 'version': required, e.g. \"2026-01-15.1\"")
        version = ""
    categories = _check_categories(doc.get("categories"), errors)
    locked, unsubscribable = _check_preferences(doc.get("preferences"), categories, errors)
    for name, attrs in categories.items():
        attrs["locked"], attrs["unsubscribable"] = name in locked, name in unsubscribable
    thresholds = _check_thresholds(doc.get("thresholds"), errors)
    uncertain_sends = check_uncertain(doc.get("uncertain_sends"), set(categories), errors)
    labels = parse_labels(doc.get("labels"), categories, errors)
    consents = _check_consents(doc.get("consent_defaults"), errors)
    specs = fact_specs(categories)
    raw_rules = doc.get("rules")
    rules: list[Rule] = []
    if not isinstance(raw_rules, list) or not raw_rules:
        errors.append("field 'rules': expected a non-empty list of rules")
    elif len(raw_rules) > MAX_RULES:
        errors.append(f"field 'rules': {len(raw_rules)} rules; at most {MAX_RULES}")
    else:
        seen: set[str] = set()
        for i, raw in enumerate(raw_rules):
            rule = _compile_rule(raw, i, specs, thresholds, seen, errors)
            if rule is not None:
                rules.append(rule)
    if errors:
        return None, errors
    category_facts = {
        name: {f"category.{attr}": value for attr, value in attrs.items()}
        for name, attrs in categories.items()
    }
    rules_by_category = _rules_by_category(raw_rules, rules, specs, thresholds, category_facts)
    start, end = (int(x[:2]) * 60 + int(x[3:]) for x in thresholds["quiet_hours"])
    timing = (timedelta(seconds=thresholds["presence_window_seconds"]),
              timedelta(days=thresholds["dormant_after_days"]),
              timedelta(days=thresholds["churned_after_days"]), (start, end))
    whens = [r.get("when") for r in raw_rules if isinstance(r, Mapping)]
    capped = frozenset(name for name, entries in rules_by_category.items()
                       if any(rule.effects.cap_messages is not None for _, rule, _, _ in entries))
    policy = Policy(
        version.strip(), dict(doc), categories, thresholds, consents, tuple(rules), specs,
        category_facts=category_facts,
        timing=timing,
        rules_by_category=rules_by_category,
        conditions_read_in_app_counts=any(_reads_facts(w, _COUNT_FACTS) for w in whens),
        uncertain_sends=uncertain_sends,
        locked_categories=locked,
        unsubscribable_categories=unsubscribable,
        capped_categories=capped,
        conditions_read_message_counts=any(_reads_facts(w, _MESSAGE_COUNT_FACTS) for w in whens),
        labels=labels,
    )
    return policy, []


_COUNT_FACTS = ("in_app_count_day", "in_app_count_week")
_MESSAGE_COUNT_FACTS = ("message_count_day", "message_count_week")


def _reads_facts(node: Any, names: tuple[str, ...]) -> bool:
    if isinstance(node, Mapping):
        return node.get("fact") in names or any(_reads_facts(v, names) for v in node.values())
    if isinstance(node, list):
        return any(_reads_facts(v, names) for v in node)
    return False


def load_policy(source: str | Path | Mapping[str, Any]) -> Policy:
    """Load and compile a policy from a file path, YAML text or a parsed dict. Raises PolicyError."""
    try:
        doc = _read_source(source)
    except yaml.YAMLError as exc:
        raise PolicyError([f"yaml: {exc}"]) from exc
    except OSError as exc:
        raise PolicyError([f"cannot read policy: {exc}"]) from exc
    policy, errors = _build(doc)
    if policy is None:
        raise PolicyError(errors)
    return policy


def lint_document(text_or_path: str | Path | Mapping[str, Any]) -> list[str]:
    """Every problem in a policy document; an empty list when it is valid."""
    try:
        load_policy(text_or_path)
    except PolicyError as exc:
        return exc.errors
    return []


@lru_cache(maxsize=1)
def load_default_policy() -> Policy:
    return load_policy(CATEGORIES_DEFAULT_PATH)


__all__ = ["CATEGORIES_DEFAULT_PATH", "CHANNELS", "Policy", "PolicyError", "Rule", "lint_document",
           "load_default_policy", "load_policy"]
