"""The policy's `preferences` section (locked / unsubscribable categories), the engine's use
of per-category preferences, and the `cap_messages` effect."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from policy_test_helpers import NOW, message, recipient

from policies import PolicyError, decide, load_default_policy, load_policy
from policies.constants import ENGINE_PREFERENCE
from policies.facts import RecipientFacts


@pytest.fixture
def doc(default_doc):
    return copy.deepcopy(default_doc)


def errors_of(doc) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(doc)
    return info.value.errors


def test_default_policy_locks_critical_and_legal_and_marks_marketing_like_categories_unsubscribable():
    policy = load_default_policy()
    assert {"security_alert", "otp", "payment_failure", "system_outage", "legal_notice"} == policy.locked_categories
    assert {"promotion", "winback"} <= policy.unsubscribable_categories
    assert not policy.locked_categories & policy.unsubscribable_categories
    # Facts a condition can read.
    assert policy.category_facts["otp"]["category.locked"] is True
    assert policy.category_facts["promotion"]["category.unsubscribable"] is True
    # The cross-channel cap covers every category that is not locked.
    assert policy.capped_categories == set(policy.categories) - policy.locked_categories


def test_without_a_preferences_section_critical_and_legal_categories_are_locked(doc):
    del doc["preferences"]
    policy = load_policy(doc)
    assert "otp" in policy.locked_categories and "legal_notice" in policy.locked_categories
    assert not policy.unsubscribable_categories


@pytest.mark.parametrize("section, expected", [
    ({"locked": "otp"}, "field 'preferences.locked': expected a list of category names"),
    ({"locked": ["otp", "pigeon"]}, "field 'preferences.locked': unknown category 'pigeon'"),
    ({"locked": ["security_alert", "payment_failure", "system_outage"]},
     "category 'otp' is critical and must be locked"),
    ({"locked": ["security_alert", "payment_failure", "otp", "system_outage", "promotion"],
      "unsubscribable": ["promotion"]}, "category 'promotion' is locked"),
    ({"muted": []}, "field 'preferences.muted': unknown field"),
    ("all", "field 'preferences': expected a mapping"),
])
def test_bad_preferences_sections_are_named(doc, section, expected):
    doc["preferences"] = section
    assert any(expected in e for e in errors_of(doc)), errors_of(doc)


def test_a_category_cannot_declare_locked_itself(doc):
    doc["categories"]["social"]["locked"] = True
    assert any("category 'social': field 'locked'" in e for e in errors_of(doc))


@pytest.mark.parametrize("cap, expected", [
    ({"per_day": 3}, "then.cap_messages.over"),
    ({"over": "defer"}, "at least one limit"),
    ({"per_day": -1, "over": "defer"}, "then.cap_messages.per_day"),
    ({"per_day": True, "over": "defer"}, "then.cap_messages.per_day"),
    ({"per_day": 3, "over": "drop"}, "expected one of defer, suppress"),
    ({"per_day": 3, "over": "defer", "per_month": 9}, "unknown key(s) ['per_month']"),
    (True, "then.cap_messages"),
])
def test_bad_cap_messages_effects_are_named(doc, cap, expected):
    doc["rules"].append({"id": "cap", "title": "t", "description": "d", "cites": ["seed 000 #6"],
                         "then": {"cap_messages": cap}})
    assert any(expected in e for e in errors_of(doc)), errors_of(doc)


def test_a_preference_excludes_only_its_category_and_channel():
    policy = load_default_policy()
    r = recipient(connected=False, preferences={"social": {"email": False}})
    plan = decide(policy, message("social"), r, NOW)
    assert plan.channels == ("push",)
    ex = plan.excluded_by("email")
    assert ex.rule == ENGINE_PREFERENCE and "preferences.social.email" in ex.reason
    assert any(m.rule_id == ENGINE_PREFERENCE and "preferences.social.email" in m.effect for m in plan.trace)
    assert decide(policy, message("reminder"), r, NOW).channels == ("push", "email")
    assert plan.facts["preference.email"] is False and plan.facts["preference.push"] is True


def test_a_locked_category_ignores_stored_preferences():
    policy = load_default_policy()
    r = recipient(preferences={"otp": {"sms": False, "email": False}})
    plan = decide(policy, message("otp", body="Code 123456"), r, NOW)
    assert plan.channels == ("sms", "email")
    assert plan.facts["preference.sms"] is True


def test_a_preference_off_a_channel_the_route_never_uses_is_not_named():
    policy = load_default_policy()
    plan = decide(policy, message("social"), recipient(preferences={"social": {"sms": False}}), NOW)
    assert plan.excluded_by("sms").rule != ENGINE_PREFERENCE


def test_facts_round_trip_with_preferences_and_message_counts():
    r = recipient(preferences={"social": {"email": False}}, message_count_day=2, message_count_week=5)
    back = RecipientFacts.from_dict(r.to_dict())
    assert back.preferences == {"social": {"email": False}}
    assert (back.message_count_day, back.message_count_week) == (2, 5)
    with pytest.raises(ValueError, match="preferences"):
        RecipientFacts.from_dict({**r.to_dict(), "preferences": {"social": ["email"]}})


def test_the_daily_cap_defers_to_local_midnight_in_the_recipients_timezone():
    policy = load_default_policy()
    plan = decide(policy, message("reminder"), recipient(message_count_day=6, timezone="America/Los_Angeles"), NOW)
    # NOW is 2026-03-03 19:00 in Los Angeles: the next local day starts at 08:00 UTC on the 4th.
    assert {s.not_before for s in plan.steps} == {NOW.replace(hour=8)}


def test_quiet_hours_and_the_cap_together_take_the_later_time():
    policy = load_default_policy()
    late = NOW.replace(hour=14, minute=30)  # 23:30 in Seoul: quiet hours until 08:00 (23:00 UTC)
    plan = decide(policy, message("reminder"), recipient(connected=False, message_count_day=6), late)
    by_channel = {s.channel: s.not_before for s in plan.steps}
    assert by_channel["push"] == late.replace(hour=23, minute=0)   # quiet hours end after local midnight
    assert by_channel["email"] == late.replace(hour=15, minute=0)  # email ignores quiet hours: the cap's time
    assert by_channel["push"] - late < timedelta(hours=9)


def test_the_policy_diff_shows_a_change_to_the_locked_categories(doc):
    from policies.diff import PREFERENCES_CHANGED, diff_documents

    new = copy.deepcopy(doc)
    new["preferences"]["locked"] = [*new["preferences"]["locked"], "social"]
    [change] = [c for c in diff_documents(doc, new) if c.kind == PREFERENCES_CHANGED]
    assert change.subject == "locked" and "social" in change.sentence
