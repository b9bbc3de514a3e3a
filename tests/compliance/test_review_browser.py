"""The review pages in a real browser: Debian's Chromium, headless, driven by Playwright,
against the app served over HTTP. A reviewer signs in with a compliance key, opens a draft,
reads a rule's citation, compares it with the active version, approves and activates it;
the author then cannot approve their own next draft. SQLite only (the pages' database
behaviour is covered on both databases by test_review_pages.py)."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY

from .browser_kit import serving, sign_in
from .conftest import DEFAULT_VERSION, draft_text

FIRST, SECOND = "2099-01-01.1", "2099-02-01.1"
OTP_CITATION = "seed 004, SMS is still necessary for two-factor authentication"

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def server(make_app):
    app = make_app(SECRET_KEY="browser-test-secret")
    keys = {}
    with app.extensions[EXTENSION_KEY].db.session() as s:
        # The author may also approve in general, but never their own draft.
        keys["alice"] = create_api_key(s, "alice", ["policy:write", "policy:approve", "compliance:read"])[1]
        keys["bob"] = create_api_key(s, "bob", ["compliance:read", "policy:approve"])[1]
    with serving(app) as base:
        yield base, keys


def _create_draft(base: str, key: str, version: str) -> None:
    r = httpx.post(f"{base}/v1/policies", headers={"Authorization": f"Bearer {key}"}, timeout=10,
                   json={"document": draft_text(version), "reason": "OTP by email only"})
    assert r.status_code == 201, r.text


def _sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/review/")
    assert "/review/login" in page.url
    sign_in(page, base, key)


def test_reviewer_approves_anothers_draft_and_author_cannot_approve_own(browser, server, tmp_path):
    base, keys = server
    _create_draft(base, keys["alice"], FIRST)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)

    # The reviewer signs in and finds the draft in the policy list.
    _sign_in(page, base, keys["bob"])
    assert page.locator("#whoami").inner_text() == "bob"
    listing = page.locator("#policy-list")
    assert FIRST in listing.inner_text() and "DRAFT" in listing.inner_text().upper()
    page.screenshot(path=str(tmp_path / "1-policy-list.png"), full_page=True)

    # Opens the draft and reads a rule's citation.
    listing.get_by_role("link", name=FIRST).click()
    page.wait_for_url(f"{base}/review/policies/{FIRST}")
    assert page.get_by_role("heading", level=1).inner_text().startswith(f"Policy {FIRST}")
    assert OTP_CITATION in page.locator("#rule-otp-by-sms .citation").inner_text()
    assert page.locator("#reading-table tbody#reading-otp").count() == 1

    # Compares it with the active version: the changed rule is named.
    page.locator("#diff-active").click()
    page.wait_for_url(f"{base}/review/diff?*")
    changes = page.locator("#changes").inner_text()
    assert "Rule 'otp-by-sms' (One-time codes go by SMS): effect changed" in changes
    assert f"Version {DEFAULT_VERSION} -> {FIRST}." in changes
    page.screenshot(path=str(tmp_path / "2-diff.png"), full_page=True)

    # Approves with a reason, then activates.
    page.get_by_role("link", name=FIRST).first.click()
    page.wait_for_url(f"{base}/review/policies/{FIRST}")
    page.get_by_label("Reason for approving").fill("Reviewed: OTP moves to email; SMS no longer used.")
    page.get_by_role("button", name=f"Approve {FIRST}").click()
    page.get_by_text(f"Policy {FIRST} approved by bob.").wait_for()
    page.get_by_label("Reason for activating").fill("Go live after review.")
    page.get_by_role("button", name=f"Activate {FIRST}").click()
    page.get_by_text(f"Policy {FIRST} is now active").wait_for()
    assert "ACTIVE" in page.locator("h1 .status").inner_text().upper()
    page.screenshot(path=str(tmp_path / "3-activated.png"), full_page=True)

    r = httpx.get(f"{base}/v1/policies/{FIRST}", headers={"Authorization": f"Bearer {keys['bob']}"}, timeout=10)
    assert r.json()["status"] == "active" and r.json()["approved_by"] == "bob"

    # The author writes a second draft and tries to approve it: refused, and it stays a draft.
    second = draft_text(SECOND).replace("route: [email]\n      exclude: sms", "route: [email, push]\n"
                                                                               "      exclude: sms", 1)
    r = httpx.post(f"{base}/v1/policies", headers={"Authorization": f"Bearer {keys['alice']}"}, timeout=10,
                   json={"document": second, "reason": "push as well"})
    assert r.status_code == 201, r.text
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/review/login")
    _sign_in(page, base, keys["alice"])
    page.locator("#policy-list").get_by_role("link", name=SECOND).click()
    page.wait_for_url(f"{base}/review/policies/{SECOND}")
    page.get_by_label("Reason for approving").fill("Looks right to me.")
    page.get_by_role("button", name=f"Approve {SECOND}").click()
    refusal = page.locator("#refusal")
    refusal.wait_for()
    assert "self_approval_forbidden" in refusal.inner_text()
    assert f"'alice' wrote or edited policy {SECOND}; another person must approve it" in refusal.inner_text()
    assert "DRAFT" in page.locator("h1 .status").inner_text().upper()
    page.screenshot(path=str(tmp_path / "4-self-approval-refused.png"))  # the top: the refusal
    context.close()

    r = httpx.get(f"{base}/v1/policies/{SECOND}", headers={"Authorization": f"Bearer {keys['bob']}"}, timeout=10)
    assert r.json()["status"] == "draft" and r.json()["approved_by"] is None
    print(f"screenshots in {tmp_path}")
