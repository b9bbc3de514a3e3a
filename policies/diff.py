"""Differences between two policy documents, rule by rule, in words a reviewer reads.

Pure: takes two parsed documents (``Policy.document`` dicts, or the YAML loaded as dicts) and
returns ``Change`` entries, each with a machine ``kind``, the ``subject`` (rule id, category,
threshold...), the ``field``, the values before and after, and a sentence::

    >>> [c.sentence for c in diff_documents(old.document, new.document)]
    ["Rule 'otp-by-sms' (One-time codes go by SMS): effect changed from {route: [sms, email]} to ..."]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# kinds
RULE_ADDED = "rule_added"
RULE_REMOVED = "rule_removed"
RULE_MOVED = "rule_moved"
CONDITION_CHANGED = "condition_changed"
EFFECT_CHANGED = "effect_changed"
TITLE_CHANGED = "title_changed"
DESCRIPTION_CHANGED = "description_changed"
CITATION_CHANGED = "citation_changed"
REASON_CHANGED = "reason_changed"
THRESHOLD_ADDED = "threshold_added"
THRESHOLD_REMOVED = "threshold_removed"
THRESHOLD_CHANGED = "threshold_changed"
CATEGORY_ADDED = "category_added"
CATEGORY_REMOVED = "category_removed"
CATEGORY_CHANGED = "category_changed"
CONSENT_DEFAULT_CHANGED = "consent_default_changed"
PREFERENCES_CHANGED = "preferences_changed"  # the locked / unsubscribable category lists
LABELS_CHANGED = "labels_changed"  # what the preference center calls a category or channel
VERSION_CHANGED = "version_changed"
POLICY_DESCRIPTION_CHANGED = "policy_description_changed"

_RULE_FIELDS = (
    ("when", CONDITION_CHANGED, "condition"),
    ("then", EFFECT_CHANGED, "effect"),
    ("title", TITLE_CHANGED, "title"),
    ("description", DESCRIPTION_CHANGED, "description"),
    ("cites", CITATION_CHANGED, "citation"),
    ("reason", REASON_CHANGED, "reason"),
)


@dataclass(frozen=True)
class Change:
    kind: str
    subject: str          # rule id, category name, threshold name, consent key, or "policy"
    field: str | None
    before: Any
    after: Any
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "field": self.field,
                "before": self.before, "after": self.after, "sentence": self.sentence}


def render(value: Any) -> str:
    """A value as compact one-line YAML: what a reviewer sees in the document."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return repr(value) if len(value) < 200 else repr(value[:197] + "...")
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, allow_unicode=True, width=10_000)
    return text.strip().removesuffix("...").strip()


def _rules(doc: Mapping[str, Any]) -> dict[str, tuple[int, Mapping[str, Any]]]:
    out: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, rule in enumerate(doc.get("rules") or []):
        if isinstance(rule, Mapping):
            out[str(rule.get("id", f"rules[{i}]"))] = (i, rule)
    return out


def _cites(rule: Mapping[str, Any]) -> list[str]:
    cites = rule.get("cites")
    return [cites] if isinstance(cites, str) else list(cites or [])


def _label(rule_id: str, rule: Mapping[str, Any]) -> str:
    title = rule.get("title")
    return f"Rule '{rule_id}' ({title})" if title else f"Rule '{rule_id}'"


def _rule_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    before, after = _rules(old), _rules(new)
    for rule_id, (_, rule) in after.items():
        if rule_id not in before:
            changes.append(Change(RULE_ADDED, rule_id, None, None, dict(rule),
                                  f"{_label(rule_id, rule)} added: when {render(rule.get('when'))} "
                                  f"then {render(rule.get('then'))}."))
    for rule_id, (_, rule) in before.items():
        if rule_id not in after:
            changes.append(Change(RULE_REMOVED, rule_id, None, dict(rule), None,
                                  f"{_label(rule_id, rule)} removed (it did: {render(rule.get('then'))})."))
    # Order matters (the last matching route wins): report rules whose relative order changed.
    common_old = [r for r in before if r in after]
    common_new = sorted(common_old, key=lambda r: after[r][0])
    for rule_id in common_old:
        old_pos, new_pos = common_old.index(rule_id), common_new.index(rule_id)
        if old_pos != new_pos:
            rule = after[rule_id][1]
            changes.append(Change(RULE_MOVED, rule_id, "position", before[rule_id][0] + 1, after[rule_id][0] + 1,
                                  f"{_label(rule_id, rule)} moved from position {before[rule_id][0] + 1} to "
                                  f"{after[rule_id][0] + 1} (for routes, the last matching rule wins)."))
    for rule_id, (_, new_rule) in after.items():
        if rule_id not in before:
            continue
        old_rule = before[rule_id][1]
        label = _label(rule_id, new_rule)
        for key, kind, word in _RULE_FIELDS:
            a, b = (_cites(old_rule), _cites(new_rule)) if key == "cites" else (old_rule.get(key), new_rule.get(key))
            if a == b:
                continue
            if key == "cites":
                added = [c for c in b if c not in a]
                removed = [c for c in a if c not in b]
                parts = ([f"now cites {render(added)}"] if added else []) + (
                    [f"no longer cites {render(removed)}"] if removed else [])
                sentence = f"{label}: citation changed: {'; '.join(parts) or 'order changed'}."
            else:
                sentence = f"{label}: {word} changed from {render(a)} to {render(b)}."
            changes.append(Change(kind, rule_id, key, a, b, sentence))
    return changes


def _mapping_changes(old: Any, new: Any, added_kind: str, removed_kind: str, changed_kind: str,
                     noun: str) -> list[Change]:
    old = old if isinstance(old, Mapping) else {}
    new = new if isinstance(new, Mapping) else {}
    changes = []
    for key, value in new.items():
        if key not in old:
            changes.append(Change(added_kind, str(key), None, None, value,
                                  f"{noun.capitalize()} '{key}' added: {render(value)}."))
        elif old[key] != value:
            changes.append(Change(changed_kind, str(key), None, old[key], value,
                                  f"{noun.capitalize()} '{key}' changed from {render(old[key])} to {render(value)}."))
    for key, value in old.items():
        if key not in new:
            changes.append(Change(removed_kind, str(key), None, value, None,
                                  f"{noun.capitalize()} '{key}' removed (was {render(value)})."))
    return changes


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every difference from ``old`` to ``new``: policy-level fields, consent defaults,
    categories, thresholds, then the rules (added, removed, moved, then field by field)."""
    changes: list[Change] = []
    if str(old.get("version")) != str(new.get("version")):
        changes.append(Change(VERSION_CHANGED, "policy", "version", old.get("version"), new.get("version"),
                              f"Version {old.get('version')} -> {new.get('version')}."))
    if old.get("description") != new.get("description"):
        sentence = f"Policy description changed to {render(new.get('description'))}."
        changes.append(Change(POLICY_DESCRIPTION_CHANGED, "policy", "description", old.get("description"),
                              new.get("description"), sentence))
    changes += _mapping_changes(old.get("consent_defaults"), new.get("consent_defaults"), CONSENT_DEFAULT_CHANGED,
                                CONSENT_DEFAULT_CHANGED, CONSENT_DEFAULT_CHANGED, "consent default")
    changes += _mapping_changes(old.get("categories"), new.get("categories"), CATEGORY_ADDED, CATEGORY_REMOVED,
                                CATEGORY_CHANGED, "category")
    changes += _mapping_changes(old.get("thresholds"), new.get("thresholds"), THRESHOLD_ADDED, THRESHOLD_REMOVED,
                                THRESHOLD_CHANGED, "threshold")
    changes += _mapping_changes(old.get("preferences"), new.get("preferences"), PREFERENCES_CHANGED,
                                PREFERENCES_CHANGED, PREFERENCES_CHANGED, "preference list")
    changes += _mapping_changes(_labels(old), _labels(new), LABELS_CHANGED, LABELS_CHANGED, LABELS_CHANGED,
                                "label")
    changes += _rule_changes(old, new)
    return changes


def _labels(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The `labels` section flattened to {"categories.social": {"en": …, "ko": …}}."""
    section = doc.get("labels")
    if not isinstance(section, Mapping):
        return {}
    return {f"{part}.{name}": texts for part, names in section.items() if isinstance(names, Mapping)
            for name, texts in names.items()}


__all__ = ["Change", "diff_documents", "render"]
