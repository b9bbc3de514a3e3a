"""The whole review in a real browser (Debian's Chromium through Playwright, the app served
over HTTP), as issue #20's "done when" describes it, and every review page at 375 px.

The journey: ~200 varied messages of history go in through the API; a policy author, invited
by the CLI's one-time link, drafts a change in the browser (one-time codes: SMS moves from
first to fallback) and saves it with a reason; a second person, invited through the admin
API, opens the draft, reads its impact with example messages (the first → fallback move
counted), opens one example's trace, compares the versions, approves and activates it by
keyboard alone; then finds a user's messages by user id and opens one trace. All of it on a
375 px phone screen: every page it visits has 0 axe-core violations and does not scroll
sideways (desktop widths are covered page by page by the per-feature browser tests).

The sweep: every review page (and its error pages) at 375 px, with the same two checks.
Screenshots in /tmp/shots/e2e-review/. SQLite only: the pages' database behaviour is covered
on both databases by the per-feature tests."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY
from orchestrator.cli.main import main as cli

from ..conftest import due_ids
from ..fakes.oidc_provider import FakeOidcProvider
from ..live_server import free_port
from .browser_kit import check_page, serving
from .conftest import DEFAULT_VERSION, OTP_ROUTE

pytest.importorskip("axe_playwright_python.sync_playwright")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots/e2e-review"))
PHONE = 375
LONG_USER = "customer-with-a-rather-long-user-identifier-0001"
USERS = (LONG_USER, "u-ada", "u-bo", "u-chen", "u-dara", "u-eli", "u-fox", "u-gil")
# category, urgency, title: a spread of what a product sends.
KINDS = (
    ("otp", "critical", "Your sign-in code"),
    ("transactional", "normal", "Your order has shipped and will arrive on Thursday between 9 and 12"),
    ("security_alert", "critical", "New sign-in from Chrome on Windows"),
    ("promotion", "low", "Twenty percent off everything this weekend only"),
    ("otp", "critical", "Your verification code"),
    ("reminder", "normal", "Your appointment is tomorrow"),
    ("social", "low", "Someone replied to your comment"),
    ("payment_failure", "high", "Your card was declined"),
    ("legal_notice", "normal", "Terms of service update"),
    ("onboarding", "normal", "Getting started: three things to try"),
)
HISTORY = 200
GROUPS = {"policy-leads": ["compliance:read", "policy:approve"]}


def _recipient(i: int, user_id: str) -> dict:
    """Varied reachability: every third has no phone, every fourth no email, some no device."""
    body = {"timezone": ("Europe/London", "Asia/Seoul", "America/New_York", "UTC")[i % 4],
            "consents": {"sms": True, "email": True, "push": True, "marketing": i % 2 == 0}}
    if i % 3:
        body["phone"] = f"+44 7400 1234{i:02d}"
    if i % 4 != 1:
        body["email"] = f"person{i}@example.com"
    if i % 5 != 2:
        body["devices"] = [{"token": f"fcm-token-{i}", "platform": "fcm"}]
    return body


def _seed_history(app, clock, backend: str, count: int) -> None:
    """`count` messages through the API over the last ~5 days, several users, categories and
    urgencies; due attempts delivered along the way so statuses vary."""
    st = app.extensions[EXTENSION_KEY]
    client = app.test_client()
    auth = {"Authorization": f"Bearer {backend}"}
    for i, user in enumerate(USERS):
        r = client.put(f"/v1/recipients/{user}", headers=auth, json=_recipient(i, user))
        assert r.status_code == 201, r.get_json()
    for n in range(count):
        category, urgency, title = KINDS[n % len(KINDS)]
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": USERS[(n * 3 + n // len(KINDS)) % len(USERS)]}, "category": category,
            "urgency": urgency, "content": {"title": title, "body": f"Message {n}: {title}."}})
        assert r.status_code == 202, r.get_json()
        clock.advance(minutes=37)
        if n % 10 == 9:
            st.dispatcher.sweep_once()
            for attempt in due_ids(st):
                st.dispatcher.deliver(attempt)


@pytest.fixture
def served(make_app, clock, settings_env):
    """The app over HTTP on a known port (invitation links carry it), with an identity
    provider fake for the sign-in page's single sign-on. Yields (base, keys, env, idp)."""
    with FakeOidcProvider() as idp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        app = make_app(SECRET_KEY="browser-test-secret", PUBLIC_BASE_URL=base, REVIEW_OIDC_ISSUER=idp.issuer,
                       REVIEW_OIDC_CLIENT_ID=idp.client_id, REVIEW_OIDC_CLIENT_SECRET=idp.client_secret,
                       REVIEW_OIDC_GROUP_SCOPES=json.dumps(GROUPS), REVIEW_OIDC_PROVIDER_NAME="Acme SSO")
        with app.extensions[EXTENSION_KEY].db.session() as s:
            keys = {name: create_api_key(s, name, scopes)[1] for name, scopes in (
                ("root", ["admin"]), ("backend", ["send", "read", "recipients"]),
                ("pat", ["policy:write", "compliance:read", "policy:approve"]), ("ops", ["send"]))}
        env = {**settings_env, "PUBLIC_BASE_URL": base}
        with serving(app, port):
            yield base, keys, env, idp, app


def _check(page, name: str) -> None:
    """At 375 px: no sideways scroll, no axe-core violation; a full-page screenshot to look at.
    Every <details> is opened first: what it hides must fit too."""
    check_page(page, name, SHOTS, without_scrollbar=True, open_details=True)


def _tab_to(page, selector: str, limit: int = 120) -> None:
    """Presses Tab until the element matching `selector` has the focus (keyboard only)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(sel) => document.activeElement && document.activeElement.matches(sel)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab within {limit} presses")


# -- the journey ----------------------------------------------------------------------------
def test_a_whole_review_in_the_browser(browser, served, clock):
    base, keys, env, _, app = served
    _seed_history(app, clock, keys["backend"], HISTORY)

    # The author's invitation, from the command line; the approver's, through the admin API.
    out = CliRunner().invoke(cli, ["reviewers", "invite", "--name", "Alice Author", "--scopes",
                                   "policy:write", "--reason", "drafts the OTP change"], env=env)
    assert out.exit_code == 0, out.output
    author_link = json.loads(out.stdout)["link"]
    r = httpx.post(f"{base}/v1/reviewers/invitations", headers={"Authorization": f"Bearer {keys['root']}"},
                   json={"name": "Bob Approver", "scopes": ["compliance:read", "policy:approve"]}, timeout=10)
    assert r.status_code == 201, r.text
    approver_link = r.json()["link"]
    assert author_link.startswith(f"{base}/review/invite/") and approver_link.startswith(f"{base}/review/invite/")

    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)

    # 1. The author opens the link and accepts it.
    page.goto(author_link)
    assert page.locator("#invitee").inner_text() == "Alice Author"
    _check(page, "journey-01-author-invitation")
    page.get_by_role("button", name="Accept and sign in").click()
    page.wait_for_url(f"{base}/review/")
    assert page.locator("#whoami").inner_text() == "Alice Author"
    _check(page, "journey-02-author-index")

    # 2. Drafts the change: starts from the active version with a reason ...
    page.get_by_role("link", name=f"Draft a change to the active policy ({DEFAULT_VERSION})").click()
    page.wait_for_url(f"{base}/review/policies/{DEFAULT_VERSION}/draft")
    version = page.get_by_label("Version name of the new draft").input_value()
    page.get_by_label("Reason for this draft").fill("One-time codes: email first, SMS as the fallback")
    _check(page, "journey-03-start-draft")
    page.get_by_role("button", name="Start draft").click()
    page.wait_for_url(f"{base}/review/drafts/{version}")

    # ... moves SMS for one-time codes from first to fallback in the rules, lint clean, saves.
    rules = page.get_by_label("Rules (YAML, evaluated top to bottom)")
    original = rules.input_value()
    assert OTP_ROUTE in original
    rules.fill(original.replace(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[email, sms]"), 1))
    page.locator("#lint").get_by_text("No problems found.").wait_for()
    page.get_by_label("Reason for this change (required)").fill("SMS costs; codes by email first, SMS if it fails")
    page.get_by_role("button", name="Save draft").click()
    page.get_by_text(f"Draft {version} saved.").wait_for()
    assert "SMS moved from first to fallback" in page.locator("#changes-in-words").inner_text()
    _check(page, "journey-04-draft-saved")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/review/login")

    # 3. The approver accepts their invitation and opens the draft from the list.
    page.goto(approver_link)
    assert page.locator("#invitee").inner_text() == "Bob Approver"
    page.get_by_role("button", name="Accept and sign in").click()
    page.wait_for_url(f"{base}/review/")
    assert page.locator("#whoami").inner_text() == "Bob Approver"
    page.locator("#policy-list").get_by_role("link", name=version).click()
    page.wait_for_url(f"{base}/review/policies/{version}")

    # The impact next to the approval form: the OTP messages change plan (a mode change).
    page.locator("#impact-summary").wait_for()
    changed, total = map(int, re.search(r"([\d,]+) of ([\d,]+) messages", page.locator("#impact-summary")
                                        .inner_text()).groups())
    assert total == HISTORY and 0 < changed < total, (changed, total)
    assert page.locator("#kind-mode_changed").count() == 1
    assert page.locator("#kind-mode_changed a").count() >= 1  # example messages, linked
    history = page.locator("#policy-history").inner_text()
    assert "Alice Author" in history and "SMS costs; codes by email first" in history
    _check(page, "journey-05-draft-policy-page")

    # The full report: by category, and example messages with what changes.
    page.locator("#impact-link").click()
    page.locator("#impact-examples").wait_for()
    examples = page.locator("#impact-examples").inner_text()
    assert "SMS: first → fallback" in examples
    # One-time codes to people with a phone and an email change (SMS becomes the fallback).
    otp = page.locator("#impact-categories tr", has_text="otp").inner_text()
    assert "a step's mode changed" in otp and int(otp.split()[2]) > 0, otp
    _check(page, "journey-06-impact-report")

    # One example's trace: decided by the active version, SMS first.
    page.locator("#impact-examples a").first.click()
    page.wait_for_url(f"{base}/review/messages/*")
    assert page.locator("#steps tbody tr").first.locator("th").inner_text() == "sms"
    assert "Decision trace" in page.locator("main").inner_text()
    _check(page, "journey-07-example-trace")

    # Compares the draft with the active version.
    page.goto(f"{base}/review/policies/{version}")
    page.locator("#diff-active").click()
    page.wait_for_url(f"{base}/review/diff?*")
    assert "otp-by-sms" in page.locator("#changes").inner_text()
    _check(page, "journey-08-diff")

    # 4. Approves and activates with the keyboard alone: Tab to the field, type, Tab, Enter.
    page.goto(f"{base}/review/policies/{version}")
    page.locator("#impact-summary").wait_for()
    _tab_to(page, "#approve-reason")
    page.keyboard.type("Reviewed the impact: every code still goes out, by email first.")
    _tab_to(page, "#approve-form button[type=submit]", limit=2)
    page.keyboard.press("Enter")
    page.get_by_text(f"Policy {version} approved by Bob Approver.").wait_for()
    _check(page, "journey-09-approved")
    _tab_to(page, "#activate-reason")
    page.keyboard.type("Go live after review.")
    _tab_to(page, "#activate-form button[type=submit]", limit=2)
    page.keyboard.press("Enter")
    page.get_by_text(f"Policy {version} is now active").wait_for()
    assert "ACTIVE" in page.locator("h1 .status").inner_text().upper()
    _check(page, "journey-10-activated")
    r = httpx.get(f"{base}/v1/policies/{version}", headers={"Authorization": f"Bearer {keys['root']}"}, timeout=10)
    assert (r.json()["status"], r.json()["approved_by"]) == ("active", "Bob Approver")

    # 5. Finds a user's messages by user id (keyboard: the nav link, the field, Enter) ...
    page.goto(f"{base}/review/")
    _tab_to(page, "nav a[href$='/review/messages/search']")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}/review/messages/search")
    _check(page, "journey-11-search-form")
    _tab_to(page, "#f-user")
    page.keyboard.type(LONG_USER)
    page.keyboard.press("Enter")
    page.wait_for_selector("#results")
    rows = page.locator("#results tbody tr")
    assert rows.count() >= 5
    assert all(LONG_USER in t for t in rows.locator("td[data-label=User]").all_inner_texts())
    _check(page, "journey-12-search-results")

    # ... and opens one trace.
    rows.first.locator("a").click()
    page.wait_for_url(f"{base}/review/messages/*")
    assert LONG_USER in page.locator("dl.facts").inner_text()
    _check(page, "journey-13-user-trace")
    context.close()


# -- every review page at 375 px -------------------------------------------------------------
def test_every_review_page_fits_a_phone_and_passes_axe(browser, served, clock):
    base, keys, env, idp, app = served
    _seed_history(app, clock, keys["backend"], 40)
    pat = {"Authorization": f"Bearer {keys['pat']}"}
    # An approved version (for the activation form) and a draft (for the editor and impact).
    document = app.test_client().get(f"/v1/policies/{DEFAULT_VERSION}", headers=pat).get_json()["document"]
    approved, draft = "2099-01-01.1", "2099-02-01.1"
    for version, route in ((approved, "[email, sms]"), (draft, "[email]")):
        doc = document.replace(f'version: "{DEFAULT_VERSION}"', f'version: "{version}"', 1)
        r = httpx.post(f"{base}/v1/policies", headers=pat, timeout=10, json={
            "document": doc.replace(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", route), 1), "reason": "sweep"})
        assert r.status_code == 201, r.text
    r = httpx.post(f"{base}/v1/policies/{approved}/approve", timeout=10, json={"reason": "ok"},
                   headers={"Authorization": f"Bearer {keys['root']}"})
    assert r.status_code == 200, r.text

    context = browser.new_context(viewport={"width": PHONE, "height": 800})
    page = context.new_page()
    page.set_default_timeout(20_000)
    visited: list[str] = []

    def visit(path: str, name: str, status: int = 200) -> None:
        response = page.goto(f"{base}{path}")
        assert response is not None and response.status == status, (path, response and response.status)
        _check(page, f"sweep-{name}")
        visited.append(name)

    # Signed out: the sign-in page (with single sign-on), an invitation, a used and an unknown one.
    visit("/review/login", "login")
    link = httpx.post(f"{base}/v1/reviewers/invitations", headers={"Authorization": f"Bearer {keys['root']}"},
                      json={"name": "Someone With A Rather Long Name From Compliance", "scopes": [
                          "compliance:read", "policy:approve", "policy:write"]}, timeout=10).json()["link"]
    visit(link.removeprefix(base), "invite")
    page.get_by_role("button", name="Accept and sign in").click()
    page.wait_for_url(f"{base}/review/")
    visit(link.removeprefix(base), "invite-used", 410)
    visit("/review/invite/not-a-real-token", "invite-unknown", 404)
    idp.next_user = {"sub": "stranger", "name": "Mo Marketing", "groups": ["marketing"]}
    stranger = browser.new_context(viewport={"width": PHONE, "height": 800}).new_page()
    stranger.goto(f"{base}/review/sso")
    assert stranger.get_by_role("heading", level=1).inner_text() == "No access to the review pages"
    _check(stranger, "sweep-sso-no-access")
    stranger.context.close()

    # Signed in with every scope: each page.
    visit("/review/", "index")
    visit(f"/review/policies/{DEFAULT_VERSION}", "policy-active")
    visit(f"/review/policies/{draft}", "policy-draft")
    visit(f"/review/policies/{approved}", "policy-approved")
    visit(f"/review/diff?from={DEFAULT_VERSION}&to={draft}", "diff")
    visit("/review/diff", "diff-empty")
    visit(f"/review/policies/{DEFAULT_VERSION}/draft", "draft-start")
    visit(f"/review/drafts/{draft}", "draft-editor")
    visit(f"/review/policies/{draft}/impact", "impact")
    visit(f"/review/policies/{DEFAULT_VERSION}/impact", "impact-of-active")
    visit("/review/mix", "mix")
    visit("/review/messages", "message-lookup")
    visit("/review/messages/search", "search-form")
    visit(f"/review/messages/search?user_id={LONG_USER}", "search-results")
    page.locator("#results tbody tr a").first.click()
    page.wait_for_url(f"{base}/review/messages/*")
    _check(page, "sweep-message-trace")
    visit("/review/legal", "legal")
    visit("/review/guidelines", "guidelines")

    # Error pages, each naming what is wrong.
    visit("/review/policies/no-such-version", "policy-not-found", 404)
    visit("/review/messages/no-such-message", "message-not-found", 404)
    visit("/review/messages/search?from=2026-02-30", "search-error", 422)
    visit(f"/review/diff?from={DEFAULT_VERSION}&to=nope", "diff-error", 404)
    visit(f"/review/policies/{draft}/impact?days=0", "impact-bad-days", 422)
    visit("/review/decisions.csv?from=2026-13-01", "export-error", 422)
    # A draft saved with problems: the editor lists them, each linking to its field.
    page.goto(f"{base}/review/drafts/{draft}")
    page.get_by_label("In-app messages per day").fill("many")
    page.get_by_label("Reason for this change (required)").fill("   ")
    page.get_by_role("button", name="Save draft").click()
    page.locator("#save-errors").wait_for()
    _check(page, "sweep-draft-save-errors")
    # A form whose security token does not match.
    page.goto(f"{base}/review/policies/{draft}")
    page.evaluate("document.querySelector('#approve-form input[name=csrf_token]').value = 'stale'")
    page.get_by_label("Reason for approving").fill("ok")
    page.get_by_role("button", name=f"Approve {draft}").click()
    page.get_by_role("heading", name="Form expired").wait_for()
    _check(page, "sweep-form-expired")
    # A key without the scope a page needs.
    page.goto(f"{base}/review/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/review/login")
    page.get_by_label("API key").fill(keys["ops"])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Not allowed").wait_for()
    _check(page, "sweep-not-allowed")
    # Addresses no page has, and a wrong method: the review's own error page, not the API's JSON.
    visit("/review/no-such-page", "unknown-address", 404)
    assert page.get_by_role("heading", level=1).inner_text() == "Page not found"
    assert page.locator("#whoami").inner_text() == "ops"  # the header still says who is signed in
    visit("/review/logout", "wrong-method", 405)  # sign-out is a POST
    assert "does not take a GET request" in page.locator("main").inner_text()
    r = httpx.get(f"{base}/v1/no-such-thing", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    context.close()
    assert len(visited) >= 25
