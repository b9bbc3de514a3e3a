"""The message search and the policy reading pages in Debian's Chromium (Playwright), with
axe-core: at desktop width and at 375 px, no accessibility violation and no horizontal page
scroll. A reviewer finds a user's messages, pages through them and opens one trace; reads the
default policy's table and follows a citation to its guideline. SQLite only (the queries are
covered on both databases by test_message_search.py and test_policy_reading.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY

from ..conftest import due_ids
from .browser_kit import check_page, serving, sign_in
from .conftest import DEFAULT_VERSION

pytest.importorskip("axe_playwright_python.sync_playwright")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
SHOTS = Path("/tmp/shots/reading")
LONG_USER = "customer-with-a-rather-long-user-identifier-0001"
WIDTHS = {"desktop": 1280, "phone": 375}


@pytest.fixture
def server(make_app, clock):
    app = make_app(SECRET_KEY="browser-test-secret")
    st = app.extensions[EXTENSION_KEY]
    client = app.test_client()
    with st.db.session() as s:
        reviewer = create_api_key(s, "carol", ["compliance:read"])[1]
        backend = create_api_key(s, "backend", ["send", "read", "recipients"])[1]
    auth = {"Authorization": f"Bearer {backend}"}
    r = client.put(f"/v1/recipients/{LONG_USER}", headers=auth, json={
        "email": "ada@example.com", "phone": "+44 7400 123456", "consents": {"sms": True},
        "devices": [{"token": "fcm-token-1", "platform": "fcm"}]})
    assert r.status_code == 201, r.get_json()
    for i, (category, urgency) in enumerate([("otp", "critical"), ("transactional", "normal"),
                                             ("security_alert", "critical")] * 2):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": LONG_USER}, "category": category, "urgency": urgency,
            "content": {"title": f"A fairly long title for message number {i} of the history", "body": "Hello"}})
        assert r.status_code == 202, r.get_json()
        st.dispatcher.sweep_once()
        for attempt in due_ids(st):
            st.dispatcher.deliver(attempt)
        clock.advance(minutes=5)
    with serving(app) as base:
        yield base, reviewer


def _check(page, name: str) -> None:
    """No axe-core violation, no horizontal page scroll; a full-page screenshot to look at."""
    check_page(page, name, SHOTS)


# 375 px: tests/compliance/test_review_journey_browser.py sweeps this page (and every other) at phone width
@pytest.mark.parametrize("width", ["desktop"])
def test_find_messages_and_read_the_policy(browser, server, width):
    base, key = server
    context = browser.new_context(viewport={"width": WIDTHS[width], "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, key)

    # Find a user's messages: the form, then two pages (the cursor link), then one trace.
    page.get_by_role("link", name="Find messages").click()
    page.get_by_label("User ID").fill(LONG_USER)
    page.get_by_label("Sent on channel").select_option("sms")
    page.get_by_role("button", name="Find").click()
    page.wait_for_selector("#results")
    assert page.locator("#results tbody tr").count() == 4  # the codes and the alerts went by SMS
    _check(page, f"search-{width}")
    page.goto(page.url + "&limit=3")
    assert page.locator("#results tbody tr").count() == 3
    page.locator("#next-page").click()
    page.wait_for_selector("#results")
    assert page.locator("#results tbody tr").count() == 1
    page.locator("#results tbody tr a").first.click()
    page.wait_for_url(f"{base}/review/messages/*")
    assert "Decision trace" in page.content()

    # A refused filter: the page says which field, and stays accessible.
    page.goto(f"{base}/review/messages/search?from=2026-02-30")
    assert "from: not a date" in page.locator("#search-error").inner_text()
    _check(page, f"search-error-{width}")

    # The policy: the table in words, then a citation to its guideline.
    page.goto(f"{base}/review/policies/{DEFAULT_VERSION}")
    otp = page.locator("#reading-otp").inner_text()
    assert "SMS first; then email as fallback if SMS fails." in otp
    _check(page, f"policy-{width}")
    box = page.locator("#reading-table").bounding_box()
    page.screenshot(path=str(SHOTS / f"policy-table-{width}.png"), full_page=True,
                    clip={"x": 0, "y": box["y"] - 120, "width": WIDTHS[width], "height": 1400})
    rule = page.locator("#rule-quiet-hours-defer-interruptions").bounding_box()
    page.screenshot(path=str(SHOTS / f"policy-rule-{width}.png"), full_page=True,
                    clip={"x": 0, "y": rule["y"] - 10, "width": WIDTHS[width], "height": 700})
    page.locator("#rule-otp-by-sms .citation a").first.click()
    page.wait_for_url(f"{base}/review/guidelines#seed-004-sms-still-needed")
    assert "two-factor" in page.locator("#seed-004-sms-still-needed").inner_text()
    _check(page, f"guidelines-{width}")
    context.close()
