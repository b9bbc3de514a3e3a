import copy
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from policy_test_helpers import NOW

from policies import load_default_policy, load_policy, run_golden
from policies.golden import GOLDEN_DEFAULT_PATH, _resolve_times

GOLDEN = yaml.safe_load(GOLDEN_DEFAULT_PATH.read_text(encoding="utf-8"))
RESULTS = {r.name: r for r in run_golden(load_default_policy())}


def test_golden_file_has_at_least_40_uniquely_named_cases():
    names = [c["name"] for c in GOLDEN["cases"]]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    assert len(RESULTS) == len(names)


@pytest.mark.parametrize("name", [c["name"] for c in GOLDEN["cases"]])
def test_golden_case(name):
    result = RESULTS[name]
    assert result.passed, result.diff


def test_every_default_rule_is_decisive_in_some_golden_case():
    """Each rule is named in some case's expected exclusions, or its effect shows in the steps."""
    named = {rule for c in GOLDEN["cases"] for rule in (c["expect"].get("excluded") or {}).values()}
    reasons = " ".join(str(c["expect"].get("reasons_contain", "")) for c in GOLDEN["cases"])
    steps = " ".join(s for c in GOLDEN["cases"] for s in c["expect"].get("steps") or [])
    by_effect = {
        "critical-reaches-outside-app": "parallel",
        "payment-failure-email-then-sms": "sms escalate after 2h",
        "legal-by-email-with-confirmation": "in_app parallel hold 30d",
        "in-app-hold-for-next-session": "hold",
        "quiet-hours-defer-interruptions": "not_before",
        "social-escalate-to-push": "escalate after 10m",
        "in-app-frequency-cap": " quiet",
    }
    for rule in load_default_policy().rules:
        covered = rule.id in named or by_effect.get(rule.id, "\0") in steps or rule.id in reasons
        assert covered, f"no golden case shows rule {rule.id!r}"


def test_a_wrong_expectation_is_reported_with_a_readable_diff(tmp_path: Path):
    doc = copy.deepcopy(GOLDEN)
    doc["cases"] = [copy.deepcopy(doc["cases"][0])]
    doc["cases"][0]["expect"] = {"steps": ["sms first"], "suppressed": True,
                                 "excluded": {"sms": "nope"}, "colour": "red"}
    path = tmp_path / "golden.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    [result] = run_golden(load_default_policy(), path)
    assert not result.passed
    got = "['in_app first', 'push fallback', 'email fallback']"
    assert f"steps: expected ['sms first'], got {got}" in result.diff
    assert "suppressed: expected True, got False" in result.diff
    assert "excluded: expected {'sms': 'nope'}" in result.diff
    assert "unknown expectation 'colour'" in result.diff


def test_a_case_with_bad_facts_fails_instead_of_raising(tmp_path: Path):
    doc = {"defaults": GOLDEN["defaults"],
           "cases": [{"name": "bad", "message": {"category": "fax_blast"}, "expect": {"suppressed": True}}]}
    path = tmp_path / "golden.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    [result] = run_golden(load_default_policy(), str(path))
    assert not result.passed and "unknown category 'fax_blast'" in result.diff


def test_golden_cases_detect_a_changed_policy():
    """Dropping the OTP rule must break the OTP golden cases: the table really pins behaviour."""
    doc = copy.deepcopy(load_default_policy().document)
    doc["rules"] = [r for r in doc["rules"] if r["id"] != "otp-by-sms"]
    results = {r.name: r for r in run_golden(load_policy(doc))}
    assert not results["OTP goes by SMS with email fallback, also for a user in the app"].passed


def test_relative_times_and_repeat_sugar():
    out = _resolve_times({"last_active_at": "-45d", "expires_at": "+2h", "last_heartbeat_at": "2026-01-01",
                          "title": "-1d", "body": {"repeat": "인", "times": 3}}, NOW)
    assert out["last_active_at"] == NOW - timedelta(days=45)
    assert out["expires_at"] == NOW + timedelta(hours=2)
    assert out["last_heartbeat_at"] == "2026-01-01"  # absolute values are left to from_dict
    assert out["title"] == "-1d"  # only datetime fields are relative
    assert out["body"] == "인인인"
