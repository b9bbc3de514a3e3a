"""policies.diff: pure differences between two parsed documents, in reviewer's words."""

from __future__ import annotations

import copy

import policies
from policies.diff import diff_documents

from .conftest import draft_text

BASE = policies.load_default_policy().document


def _kinds(changes):
    return {(c.kind, c.subject) for c in changes}


def test_identical_documents_have_no_changes():
    assert diff_documents(BASE, copy.deepcopy(BASE)) == []


def test_effect_and_reason_change_of_a_real_edit():
    new = policies.load_policy(draft_text("2099-01-01.1")).document
    changes = diff_documents(BASE, new)
    assert ("effect_changed", "otp-by-sms") in _kinds(changes)
    assert ("reason_changed", "otp-by-sms") in _kinds(changes)
    effect = next(c for c in changes if c.kind == "effect_changed")
    assert effect.sentence.startswith("Rule 'otp-by-sms' (One-time codes go by SMS): effect changed from ")
    assert effect.before == {"route": ["sms", "email"]} and effect.after == {"route": ["email"], "exclude": "sms"}


def test_rules_added_removed_moved_and_fields():
    new = copy.deepcopy(BASE)
    rules = new["rules"]
    removed = rules.pop(0)
    rules[0]["when"] = {"fact": "category.critical", "is": True}
    rules[1]["title"] = "Changed title"
    rules[2]["cites"] = ["seed 999"]
    rules[3]["description"] = "Now described differently."
    rules.append({"id": "brand-new", "title": "New", "description": "d", "cites": ["x"],
                  "when": {"fact": "category", "is": "otp"}, "then": {"exclude": "push"}})
    rules[4], rules[5] = rules[5], rules[4]
    new["thresholds"] = {**new["thresholds"], "sms_max_segments": 2}
    new["categories"] = {**new["categories"], "newsletter": {"critical": False, "marketing": True, "bulk": True}}
    del new["categories"]["survey"]
    kinds = _kinds(diff_documents(BASE, new))
    assert ("rule_removed", removed["id"]) in kinds
    assert ("rule_added", "brand-new") in kinds
    assert ("condition_changed", rules[0]["id"]) in kinds
    assert ("title_changed", rules[1]["id"]) in kinds
    assert ("citation_changed", rules[2]["id"]) in kinds
    assert ("description_changed", rules[3]["id"]) in kinds
    assert ("rule_moved", rules[4]["id"]) in kinds
    assert ("threshold_changed", "sms_max_segments") in kinds
    assert ("category_added", "newsletter") in kinds and ("category_removed", "survey") in kinds
    sentences = [c.sentence for c in diff_documents(BASE, new)]
    assert "Threshold 'sms_max_segments' changed from 3 to 2." in sentences
