"""Drafting a policy change in a real browser (Debian's Chromium through Playwright): the
author starts a draft from the active version, edits a setting and a rule, sees the live lint
point at the rule's line, fixes it, saves with a reason, and reads the golden scenarios and
the changes in words; then the history on the policy page. axe-core finds no violations, at
desktop width and at 375 px, where the page does not scroll sideways. SQLite only (the pages'
database behaviour is covered on both databases by test_review_drafts.py)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY

from .browser_kit import check_page, serving, sign_in
from .conftest import DEFAULT_VERSION

pytest.importorskip("axe_playwright_python.sync_playwright")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots/drafts"))
OTP_ROUTE = "      route: [sms, email]\n    reason: one-time codes go by SMS, email as fallback"
PHONE_RULE_EFFECT = "    when: {fact: reachable.sms, is: false}\n    then: {exclude: sms}\n"


@pytest.fixture
def server(make_app):
    app = make_app(SECRET_KEY="browser-test-secret")
    with app.extensions[EXTENSION_KEY].db.session() as s:
        key = create_api_key(s, "alice", ["policy:write", "compliance:read"])[1]
    with serving(app) as base:
        yield base, key


def _check_page(page, name: str) -> None:
    check_page(page, name, SHOTS, full_page=False)  # the part in view: what the step is about


# 375 px: tests/compliance/test_review_journey_browser.py sweeps this page (and every other) at phone width
@pytest.mark.parametrize("width", [1280])
def test_author_drafts_a_change_in_the_browser(browser, server, width):
    base, key = server
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, key)

    page.get_by_role("link", name=f"Draft a change to the active policy ({DEFAULT_VERSION})").click()
    page.wait_for_url(f"{base}/review/policies/{DEFAULT_VERSION}/draft")
    version = page.get_by_label("Version name of the new draft").input_value()
    page.get_by_label("Reason for this draft").fill("OTP codes by email first; fewer pop-ups")
    _check_page(page, f"{width}-1-start")
    page.get_by_role("button", name="Start draft").click()
    page.wait_for_url(f"{base}/review/drafts/{version}")

    # A setting in the form, and a mistake in a rule: the live lint names the rule and line.
    page.get_by_label("In-app messages per day").fill("5")
    rules = page.get_by_label("Rules (YAML, evaluated top to bottom)")
    original = rules.input_value()
    assert PHONE_RULE_EFFECT in original and OTP_ROUTE in original
    wrong = original.replace(PHONE_RULE_EFFECT, PHONE_RULE_EFFECT.replace("exclude: sms", "exclude: fax"))
    line = wrong[:wrong.index("exclude: fax")].count("\n") + 1
    rules.fill(wrong)
    lint = page.locator("#lint")
    lint.get_by_text("unknown channel 'fax'").wait_for()
    assert f"Line {line}, rule sms-needs-phone:" in lint.inner_text()
    assert rules.get_attribute("aria-invalid") == "true"
    assert page.locator("#lint[aria-live=polite]").count() == 1
    lint.get_by_role("link", name=f"Line {line}").click()  # puts the caret on that line
    selected = page.evaluate("() => { const t = document.activeElement; "
                             "return t.id + '|' + t.value.slice(t.selectionStart, t.selectionEnd); }")
    assert selected == "rules|    then: {exclude: fax}"
    lint.scroll_into_view_if_needed()
    _check_page(page, f"{width}-2-lint-error")

    # Fixed, and the real change made: OTP goes by email first.
    rules.fill(original.replace(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[email, sms]"), 1))
    lint.get_by_text("No problems found.").wait_for()
    assert rules.get_attribute("aria-invalid") is None
    # A reason of blanks passes the browser's `required`, not the server: the page names the field
    # and keeps the edits.
    page.get_by_label("Reason for this change (required)").fill("   ")
    page.get_by_role("button", name="Save draft").click()
    errors = page.locator("#save-errors")
    errors.wait_for()
    assert "reason: required, say why" in errors.inner_text()
    assert page.get_by_label("Reason for this change (required)").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("In-app messages per day").input_value() == "5"
    assert "route: [email, sms]" in rules.input_value()
    _check_page(page, f"{width}-3-reason-required")
    page.get_by_label("Reason for this change (required)").fill("OTP by email first: SMS costs and looks like spam")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_text(f"Draft {version} saved.").wait_for()
    summary = page.locator("#scenario-summary").inner_text()
    passed, total = map(int, re.match(r"(\d+) of (\d+) scenarios pass", summary).groups())
    assert 0 < passed < total  # the OTP scenarios expect SMS first: they fail, the others pass
    assert page.locator("#scenarios-failed tr.fail").filter(has_text="OTP").count() >= 1
    changes = page.locator("#changes-in-words").inner_text()
    assert "Category otp (rule 'otp-by-sms'): email moved from fallback to first; SMS moved from first to " \
           "fallback." in changes
    assert "In-app messages per day (cap) changed from 3 to 5." in changes
    page.locator("#scenarios-heading").scroll_into_view_if_needed()
    _check_page(page, f"{width}-4-saved")

    # The policy page shows who did what, and why.
    page.get_by_role("link", name="another person approves it on the policy page").click()
    page.wait_for_url(f"{base}/review/policies/{version}")
    history = page.locator("#policy-history").inner_text()
    assert "drafted" in history and "edited" in history and "OTP by email first: SMS costs" in history
    assert "Rule 'otp-by-sms'" in history and "Rule 'invitation-by-sms'" not in history
    page.locator("#policy-history").scroll_into_view_if_needed()
    _check_page(page, f"{width}-5-policy-history")
    context.close()
