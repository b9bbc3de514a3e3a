"""The preference panel of the example page in a real browser (Debian's Chromium, headless,
via Playwright) against the real server: it lists the categories, shows locked ones locked,
and a click turns `social` off by email, which the policy then honours. SQLite only (the
routes are covered on both databases by test_preferences_center.py)."""

from __future__ import annotations

import httpx
import pytest

from orchestrator.app_state import EXTENSION_KEY
from tests.inapp.conftest import key_for
from tests.live_server import running

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def server(make_app):
    with running(make_app) as (app, base, asgi):
        yield base, key_for(app), app.extensions[EXTENSION_KEY]


def test_example_page_preference_panel_turns_a_category_off_by_email(browser, server):
    base, auth, _ = server
    api = httpx.Client(base_url=base, headers=auth, timeout=10)
    assert api.put("/v1/recipients/u-1", json={"email": "ada@example.com"}).status_code in (200, 201)
    token = api.post("/v1/recipients/u-1/inapp-token").json()["token"]

    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/client/example.html?token={token}")
    box = page.locator('#preferences input[name="social.email"]')
    box.wait_for(timeout=5000)
    assert box.is_checked() and box.is_enabled()
    locked = page.locator('#preferences input[name="security_alert.email"]')
    assert locked.is_checked() and locked.is_disabled()
    assert "locked" in page.locator('#preferences tr[data-category="security_alert"]').inner_text()

    box.click()
    page.locator("#preferences-status").filter(has_text="Saved.").wait_for(timeout=5000)
    assert not page.locator('#preferences input[name="social.email"]').is_checked()
    assert api.get("/v1/recipients/u-1").json()["preferences"] == {"social": {"email": False}}
    plan = api.post("/v1/routing/explain", json={
        "recipient": {"user_id": "u-1"}, "category": "social", "content": {"body": "Hi"}}).json()
    assert {e["channel"]: e["rule"] for e in plan["excluded"]}["email"] == "engine:preference"

    # Reloaded, the page shows the stored state; turning it back on works the same way.
    page.reload()
    page.goto(f"{base}/client/example.html?token={token}")
    box = page.locator('#preferences input[name="social.email"]')
    box.wait_for(timeout=5000)
    assert not box.is_checked()
    box.click()
    page.locator("#preferences-status").filter(has_text="Saved.").wait_for(timeout=5000)
    assert api.get("/v1/recipients/u-1").json()["preferences"] == {}
    assert errors == []
    api.close()
