"""The component's built-in preferences panel in a real browser (Debian's Chromium, headless,
via Playwright) against the real server, on the example page: a table with column and row
headers and labelled checkboxes, locked categories shown as always on with the reason, and a
change the API then reports and the policy honours; in Korean too. axe-core finds nothing.
SQLite only (the routes are covered on both databases by test_preferences_center.py).

The labels the server gives from the policy (#21, `labels` in preferences) are checked by a
test that skips, naming the feature, on a server without them."""

from __future__ import annotations

import httpx
import pytest

from tests.inapp.browser_kit import EL, check_accessible, has_preference_labels, serve, shadow

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
PREFS = "#inbox .prefs"


def open_preferences(page, base: str, token: str, locale: str = "en") -> None:
    page.goto(f"{base}/client/example.html?token={token}&locale={locale}")
    page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
    page.locator("#inbox .prefs-toggle").click()
    page.locator(f'{PREFS} input[name="social.email"]').wait_for(timeout=10000)


def column_headings(page) -> list[str]:
    return page.locator(f"{PREFS} thead th").all_inner_texts()


def test_preferences_panel_turns_a_category_off_by_email(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_preferences(page, svc.base, token)
        assert "token=" not in page.url  # the page takes the token out of the address bar
        # Column headings name the channels; each checkbox is labelled by category and channel.
        served = httpx.get(f"{svc.base}/v1/inbox/preferences", headers={"Authorization": f"Bearer {token}"},
                           timeout=10).json()
        names = {"in_app": "In-app", "push": "Push", "email": "Email", "sms": "SMS", "whatsapp": "WhatsApp"}
        order = [c["id"] for c in served["channels"]] if "channels" in served else list(names)
        assert column_headings(page) == ["Messages", *(names[c] for c in order)]  # the server's order
        assert page.locator(f'{PREFS} th[scope="col"]').count() == 1 + len(order)
        social = next(c for c in served["categories"] if c["category"] == "social").get("label", "Social")
        box = page.get_by_role("checkbox", name=f"{social} by Email")
        assert box.is_checked() and box.is_enabled()
        # Locked categories: checked, disabled, marked always on, with the reason attached.
        locked = page.locator(f'{PREFS} input[name="security_alert.email"]')
        assert locked.is_checked() and locked.is_disabled()
        assert "Always on" in page.locator(f'{PREFS} tr[data-category="security_alert"] th').inner_text()
        reason = shadow(page, "root.getElementById(root.querySelector('input[name=\"security_alert.email\"]')"
                              ".getAttribute('aria-describedby')).textContent")
        assert "can't be turned off" in reason
        check_accessible(page, "preferences-en")

        box.click()
        page.locator(f"{PREFS} [role=status]").filter(has_text="Saved.").wait_for(timeout=10000)
        assert not page.locator(f'{PREFS} input[name="social.email"]').is_checked()
        assert svc.api.get("/v1/recipients/u-1").json()["preferences"] == {"social": {"email": False}}
        plan = svc.api.post("/v1/routing/explain", json={
            "recipient": {"user_id": "u-1"}, "category": "social", "content": {"body": "Hi"}}).json()
        assert {e["channel"]: e["rule"] for e in plan["excluded"]}["email"] == "engine:preference"
        # Focus stays on the checkbox that was changed: Space turns it back on (keyboard only).
        assert shadow(page, "root.activeElement && root.activeElement.name") == "social.email"
        page.keyboard.press("Space")
        page.locator(f"{PREFS} [role=status]").filter(has_text="Saved.").wait_for(timeout=10000)
        assert page.locator(f'{PREFS} input[name="social.email"]').is_checked()
        assert svc.api.get("/v1/recipients/u-1").json()["preferences"] == {}

        # Reloaded, the page shows the stored state.
        svc.api.put("/v1/recipients/u-1", json={"email": "ada@example.com",
                                                "preferences": {"promotion": {"push": False}}})
        open_preferences(page, svc.base, token)
        assert not page.locator(f'{PREFS} input[name="promotion.push"]').is_checked()
        assert errors == []


def test_preferences_panel_in_korean(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        page = browser.new_page()
        open_preferences(page, svc.base, token, locale="ko")
        assert page.locator(f"{PREFS} h3").inner_text() == "알림 설정"
        assert shadow(page, "root.querySelector('.panel').lang") == "ko"
        headings = column_headings(page)
        assert headings[0] == "메시지" and len(headings) == 6
        if not has_preference_labels(svc, token):  # the client's own Korean names
            assert headings[1:] == ["인앱", "푸시", "이메일", "문자"]
        assert "항상 켜짐" in page.locator(f'{PREFS} tr[data-category="security_alert"] th').inner_text()
        check_accessible(page, "preferences-ko")


def test_preferences_panel_shows_the_servers_labels(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        if not has_preference_labels(svc, token):
            pytest.skip("needs the #21 server: category and channel labels in preferences (inapp-server branch)")
        served = httpx.get(f"{svc.base}/v1/inbox/preferences?locale=ko",
                           headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
        page = browser.new_page()
        open_preferences(page, svc.base, token, locale="ko")
        assert column_headings(page)[1:] == [c["label"] for c in served["channels"]]
        for category in served["categories"]:
            row_header = page.locator(f'{PREFS} tr[data-category="{category["category"]}"] th').inner_text()
            assert row_header.startswith(category["label"])
            assert category["category"] not in row_header or category["label"] == category["category"]
        check_accessible(page, "preferences-ko-server-labels")
