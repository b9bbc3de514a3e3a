"""The policy as a reviewer reads it: the category × recipient table in words, conditions and
effects as sentences, and every citation linked to a guideline stated in docs/guidelines.md."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import policies
from orchestrator.review import guidelines, policy_reading
from policies.plan import RoutePlan, Step

from .conftest import DEFAULT_VERSION
from .test_review_pages import login, text

DEFAULT = policies.load_default_policy()


def _rows(category: str) -> dict[str, str]:
    """state label -> the plan in words, for one category of the default policy."""
    table = {c.category: c for c in policy_reading.reading_table(DEFAULT, date(2026, 12, 7))}
    return {state: row.words for row in table[category].rows for state in row.states}


def test_default_policy_table_rows_say_what_happens_in_words():
    otp = _rows("otp")
    assert otp["in the app now"] == "SMS first; then email as fallback if SMS fails"
    assert otp["no usable phone number"] == "email first"
    social = _rows("social")
    assert social["in the app now"] == (
        "in-app first; if not read within 10 minutes, push; then email as fallback if push fails")
    assert social["not in the app, active recently (2 days ago)"] == "push first; then email as fallback if push fails"
    assert social["not in the app, during quiet hours"].startswith(
        "push first, not before quiet hours end (08:00 the recipient's time)")
    assert social["not in the app, no push device"] == "email first"
    onboarding = _rows("onboarding")
    assert onboarding["not in the app, active recently (2 days ago)"] == (
        "in-app first, waiting in the inbox for the next session (up to 3 days); "
        "then email as fallback if in-app fails")
    assert onboarding["inactive (not seen for over 30 days)"] == "push first; then email as fallback if push fails"
    payment = _rows("payment_failure")
    assert payment["not in the app, active recently (2 days ago)"] == (
        "email first; push at the same time; if not read within 2 hours, SMS")
    assert _rows("winback")["no marketing consent"].startswith("nothing is sent (marketing-needs-consent")
    legal = _rows("legal_notice")["inactive (not seen for over 30 days)"]
    assert legal == ("email first. Delivery and reading must be confirmed: reminder after 1 week, "
                     "escalated after 2 weeks")


def test_states_with_the_same_outcome_share_a_row_and_only_conditioned_states_appear():
    table = {c.category: c for c in policy_reading.reading_table(DEFAULT, date(2026, 12, 7))}
    otp_rows = table["otp"].rows
    assert len(otp_rows) == 3  # SMS-then-email for six states; no phone; no email
    assert len(otp_rows[0].states) == 6 and "otp-by-sms" in otp_rows[0].rules
    # A policy whose rules never look at quiet hours, marketing consent or push devices has no such rows.
    document = {**DEFAULT.document, "version": "2099-01-01.1",
                "rules": [r for r in DEFAULT.document["rules"]
                          if not {"in_quiet_hours", "consent.marketing", "reachable.push"}
                          & policy_reading.condition_facts(r.get("when"))]}
    labels = [s.label for s in policy_reading.states_for(policies.load_policy(document))]
    assert "not in the app, during quiet hours" not in labels and "no marketing consent" not in labels
    assert "not in the app, no push device" not in labels and "in the app now" in labels


def test_plan_words_for_modes_delays_and_fallbacks():
    plan = RoutePlan("v", (Step("in_app", "first"), Step("push", "escalate", after=timedelta(minutes=15),
                                                          unless_status="read"), Step("sms", "fallback")),
                     (), False, (), (), {})
    assert policy_reading.plan_words(plan) == (
        "in-app first; if not read within 15 minutes, push; then SMS as fallback if push fails")
    assert policy_reading.plan_words(RoutePlan("v", (), (), True, ("expired",), (), {})) == "nothing is sent (expired)"


def test_conditions_and_effects_read_as_sentences():
    rules = {r["id"]: r for r in DEFAULT.document["rules"]}
    words = {rid: policy_reading.condition_words(r.get("when"), DEFAULT.thresholds) for rid, r in rules.items()}
    assert words["owned-channels-first"] == "always (every message)"
    assert words["no-sms-for-active-app-users"] == "the recipient is in the app now and the category is not critical"
    assert words["sms-segment-limit"] == "the text needs more than 3 (the threshold sms_max_segments) SMS segments"
    assert words["in-app-not-for-inactive-users"] == (
        "the recipient is not in the app and the recipient is dormant (last seen 30 to 90 days ago), "
        "churned (last seen over 90 days ago) or never seen active, unless the category is a legal notice "
        "and email cannot be used (no address or no consent)")
    assert words["quiet-hours-defer-interruptions"] == (
        "it is the recipient's quiet hours, the category is not critical and either the sender's urgency "
        "is not critical or the category is marketing")
    assert words["push-needs-device"] == "the recipient has no active push device"
    assert "{" not in "".join(words.values())  # no JSON left
    effects = {rid: policy_reading.effect_words(r["then"]) for rid, r in rules.items()}
    assert effects["winback-never-in-app"] == "Do not use in-app. Route: email first; if not read within 2 days, push."
    assert effects["quiet-hours-defer-interruptions"] == "Push, SMS and WhatsApp wait until quiet hours end."
    assert effects["frequency-cap-marketing"] == (
        "At most 6 a day and 20 a week across every channel; over that, the message is dropped.")
    assert policy_reading.condition_words({"not": {"fact": "expired", "is": True}}, {}) == (
        "it is not so that the message has expired")


def test_every_citation_of_the_default_policy_resolves_to_a_guideline():
    stated = guidelines.load()
    assert stated is not None and len(stated.sections) >= 20
    ids = [s.id for s in stated.sections]
    assert len(ids) == len(set(ids))
    for section in stated.sections:
        assert section.title and section.cited_as and section.paragraphs, section.id
    cites = [c for r in DEFAULT.rules for c in r.cites] + list(DEFAULT.document["uncertain_sends"]["cites"])
    unresolved = [c for c in cites if stated.resolve(c) is None]
    assert unresolved == []
    assert stated.resolve("seed 000, when not to use in-app #2 (time-sensitive issues)").id == "seed-000-not-in-app-2"
    assert stated.resolve("seed 004, push reaches opted-in users on the home screen").id == "seed-004-push-opt-in"
    assert stated.resolve("seed 000, when not to use in-app #20") is None  # "#2" does not claim "#20"
    assert stated.resolve("a made-up source") is None


def test_policy_page_links_citations_to_guideline_anchors_that_exist(app, people):
    carol = login(app, people["carol"])
    page = carol.get(f"/review/policies/{DEFAULT_VERSION}").get_data(as_text=True)
    anchors = set(re.findall(r'href="/review/guidelines#([a-z0-9-]+)"><cite>', page))
    assert len(anchors) >= 15 and "(no guideline page)" not in page
    served = carol.get("/review/guidelines")
    assert served.status_code == 200
    sections = set(re.findall(r'<section id="([a-z0-9-]+)" class="guideline"', served.get_data(as_text=True)))
    assert anchors <= sections
    otp_rule = re.search(r'<li id="rule-otp-by-sms".*?</li>', page, re.S).group(0)
    assert 'href="/review/guidelines#seed-004-sms-still-needed"' in otp_rule
    assert "two-factor sign-in codes" in text(served)  # the guideline, in the project's words
    # Conditions as sentences on the page; the raw JSON only inside "as written".
    rule = html.unescape(re.search(r'<li id="rule-no-sms-for-active-app-users".*?</li>', page, re.S).group(0))
    assert "The recipient is in the app now and the category is not critical." in rule
    assert "Do not use SMS." in rule


def test_a_citation_without_a_guideline_shows_as_such(app, client, people):
    from .conftest import DEFAULT_TEXT, draft_text

    document = draft_text("2099-02-02.1", otp_without_sms=False, text=DEFAULT_TEXT).replace(
        'cites: ["seed 004, SMS is still necessary for two-factor authentication"]',
        'cites: ["an internal memo of 2026"]', 1)
    assert client.post("/v1/policies", headers=people["alice"], json={"document": document}).status_code == 201
    page = text(login(app, people["carol"]).get("/review/policies/2099-02-02.1"))
    assert "<cite>an internal memo of 2026</cite> <small>(no guideline page)</small>" in page
