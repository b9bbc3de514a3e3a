"""The policy's `uncertain_sends` section: what an uncertain send on a provider that cannot be
asked becomes, per category; errors name the field."""

from __future__ import annotations

import pytest
import yaml

import policies
from policies.uncertain import UncertainAction

DOC = yaml.safe_load(policies.CATEGORIES_DEFAULT_PATH.read_text(encoding="utf-8"))


def with_section(section):
    doc = dict(DOC)
    if section is None:
        doc.pop("uncertain_sends", None)
    else:
        doc["uncertain_sends"] = section
    return doc


def test_the_shipped_policy_resends_critical_fails_marketing_and_falls_back_otherwise():
    p = policies.load_default_policy()
    assert p.uncertain_send_action("otp") == UncertainAction.RESEND
    assert p.uncertain_send_action("security_alert") == UncertainAction.RESEND
    assert p.uncertain_send_action("promotion") == UncertainAction.FAIL
    assert p.uncertain_send_action("transactional") == UncertainAction.FALLBACK
    assert DOC["uncertain_sends"]["cites"]


def test_without_the_section_the_reasoned_default_applies():
    p = policies.load_policy(with_section(None))
    assert [p.uncertain_send_action(c) for c in ("otp", "winback", "reminder")] == ["resend", "fail", "fallback"]


def test_a_category_by_name_beats_its_attributes():
    p = policies.load_policy(with_section({"default": "resend", "critical": "fallback",
                                           "categories": {"otp": "fail"}, "cites": ["x"]}))
    assert p.uncertain_send_action("otp") == "fail"
    assert p.uncertain_send_action("security_alert") == "fallback"
    assert p.uncertain_send_action("reminder") == "resend"


@pytest.mark.parametrize(("section", "fragment"), [
    ("resend", "field 'uncertain_sends': expected a mapping"),
    ({"default": "maybe", "cites": ["x"]}, "field 'default': expected one of resend, fallback, fail"),
    ({"critical": "resend"}, "field 'cites': required"),
    ({"cites": []}, "field 'cites': expected a non-empty list"),
    ({"categories": {"nope": "fail"}, "cites": ["x"]}, "field 'categories.nope': unknown category"),
    ({"categories": {"otp": 3}, "cites": ["x"]}, "field 'categories.otp': expected one of"),
    ({"categories": ["otp"], "cites": ["x"]}, "field 'categories': expected a mapping"),
    ({"sometimes": "fail", "cites": ["x"]}, "field 'sometimes': unknown"),
])
def test_mistakes_name_the_field(section, fragment):
    errors = policies.lint_document(with_section(section))
    assert any(fragment in e for e in errors), errors
