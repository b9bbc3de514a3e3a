"""The component's built-ins in a real browser (Debian's Chromium via Playwright) against the
real server: keyboard-only use (Tab, Enter, Escape; focus back on the bell), click-outside,
toasts and the live region for new items, the unread/all filter, images, the acknowledge
action on a legal notice, and a 375 px viewport where the panel is a full-screen sheet.
axe-core finds nothing in each state visited. SQLite only.

The acknowledge test needs the #21 server's `requires_acknowledgement` on inbox entries and
skips, naming it, on a server without it."""

from __future__ import annotations

import pytest

from tests.inapp.browser_kit import (
    EL,
    ROWS,
    badge_becomes,
    check_accessible,
    events,
    has_item_fields,
    host,
    serve,
    shadow,
    wait_for,
)

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
FOCUSED = "root.activeElement ? root.activeElement.className : null"


def focused(page):
    """The class of the focused element inside the component (None when focus is outside)."""
    if page.evaluate("document.activeElement && document.activeElement.id") != "inbox":
        return None
    return shadow(page, FOCUSED)


def tab_to(page, css_class: str, limit: int = 12) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused(page) == css_class:
            return
    raise AssertionError(f"Tab never reached .{css_class} (at {focused(page)!r})")


def test_keyboard_only_toasts_live_region_filter_and_images(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        page = browser.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        host(page, svc.base, attrs=f'token="{token}" toasts')
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)

        # A new item, panel closed: a toast, and the live region announces it.
        svc.send("Dinner at eight?", image_url="https://images.example/ada.png")
        page.locator("#inbox .toast").filter(has_text="Dinner at eight?").wait_for(timeout=10000)
        page.wait_for_function(f"{EL}.shadowRoot.querySelector('.live').textContent === "
                               "'New notification: Ada'", timeout=5000)
        assert badge_becomes(page, "1") == "1"
        check_accessible(page, "toast")

        # Keyboard only: Tab reaches the bell, Enter opens the panel and moves focus into it.
        page.keyboard.press("Tab")
        assert focused(page) == "bell"
        page.keyboard.press("Enter")
        assert page.evaluate(f"{EL}.hasAttribute('open')")
        assert shadow(page, "root.querySelector('.bell').getAttribute('aria-expanded')") == "true"
        assert focused(page) == "panel"
        # Items are a list of listitems; the picture beside its title is decorative (alt="").
        assert shadow(page, "root.querySelector('ul').getAttribute('role')") == "list"
        image = page.locator(f"{ROWS} img")
        assert image.get_attribute("alt") == "" and image.get_attribute("src") == "https://images.example/ada.png"
        page.wait_for_function(f"{EL}.shadowRoot.querySelector('li img').naturalWidth > 0", timeout=5000)
        check_accessible(page, "open-by-keyboard")

        tab_to(page, "open")  # the item itself
        page.keyboard.press("Enter")
        wait_for(lambda: svc.inbox(token)["unread"] == 0, "the item to be read")
        page.wait_for_function(f"{EL}.shadowRoot.querySelector('.badge').hidden", timeout=10000)
        # The click event follows the read and click receipts (both awaited, so a host that
        # navigates away does not cut them off): wait for it rather than for the badge alone.
        wait_for(lambda: events(page, "orchestrator-inbox-click"), "the orchestrator-inbox-click event")
        assert [e["type"] for e in events(page, "orchestrator-inbox-click")] == ["orchestrator-inbox-click"]

        # Escape closes, focus returns to the bell.
        page.keyboard.press("Escape")
        assert not page.evaluate(f"{EL}.hasAttribute('open')")
        assert focused(page) == "bell"

        # The unread filter: only what is unread (a new item), then everything again.
        svc.send("Still there?")
        page.locator(ROWS).filter(has_text="Still there?").wait_for(state="attached", timeout=10000)
        page.keyboard.press("Enter")
        page.locator("#inbox .filter [data-filter=unread]").click()
        assert page.locator(ROWS).count() == 1 and "Still there?" in page.locator(ROWS).inner_text()
        assert shadow(page, "root.querySelector('[data-filter=unread]').getAttribute('aria-pressed')") == "true"
        check_accessible(page, "filter-unread")
        page.locator("#inbox .filter [data-filter=all]").click()
        assert page.locator(ROWS).count() == 2

        # A failed action is not silent: an error event for the app and a polite message.
        page.route("**/archive", lambda route: route.abort("internetdisconnected"))
        page.locator(ROWS).filter(has_text="Still there?").locator(".archive").click()
        page.wait_for_function("window.seen.some(e => e.type === 'orchestrator-inbox-error')", timeout=10000)
        assert [e["action"] for e in events(page, "orchestrator-inbox-error")] == ["archive"]
        notice = page.locator("#inbox .notice")
        assert notice.is_visible() and notice.inner_text() == "That didn't work. Please try again."
        assert notice.get_attribute("role") == "status"
        assert page.locator(ROWS).count() == 2  # nothing claimed that did not happen
        check_accessible(page, "action-failed")
        page.unroute("**/archive")

        # A click outside closes the panel.
        page.locator("#elsewhere").click()
        assert not page.evaluate(f"{EL}.hasAttribute('open')")
        assert errors == []


def test_acknowledge_a_legal_notice(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        message_id = svc.send("We updated our terms.", category="legal_notice", title="New terms")
        page = browser.new_page()
        host(page, svc.base, attrs=f'token="{token}" open')
        notice = page.locator(ROWS).filter(has_text="New terms")
        notice.wait_for(timeout=10000)  # held for the user's next session: opening the app is one
        if not has_item_fields(svc, token, "requires_acknowledgement"):
            pytest.skip("needs the #21 server: requires_acknowledgement on inbox entries (legal branch)")
        svc.send("See you soon")
        page.locator(ROWS).filter(has_text="See you soon").wait_for(timeout=10000)
        assert "Needs your acknowledgement" in notice.inner_text()
        check_accessible(page, "legal-notice")

        # "Mark all read" leaves the notice unread, and says so.
        page.locator("#inbox .read-all").click()
        page.wait_for_function(f"{EL}.shadowRoot.querySelector('.live').textContent.includes('acknowledgement')",
                               timeout=10000)
        assert notice.get_attribute("class") == "unread"
        assert svc.inbox(token)["unread"] == 1

        notice.get_by_role("button", name="Acknowledge “New terms”").click()
        wait_for(lambda: svc.api.get(f"/v1/messages/{message_id}").json()["status"] == "acknowledged",
                 "the acknowledgement to be recorded")
        page.wait_for_function(f"{EL}.shadowRoot.querySelector('.badge').hidden", timeout=10000)
        assert "Acknowledged" in notice.inner_text()
        assert notice.locator(".ack").is_hidden()
        check_accessible(page, "legal-notice-acknowledged")


@pytest.mark.parametrize("locale", ["en", "ko"])
def test_a_375_px_viewport_gets_a_full_screen_sheet(browser, make_app, locale):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        page = browser.new_page(viewport={"width": 375, "height": 740})
        host(page, svc.base, attrs=f'token="{token}" locale="{locale}"')
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
        svc.send("A rather long message body that has to wrap on a phone screen without being cut off",
                 image_url="https://images.example/wide.png")
        page.locator("#inbox .bell").click()
        page.locator(ROWS).first.wait_for(timeout=10000)
        box = page.locator("#inbox .panel").bounding_box()
        assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 375, 740)
        overflow = "root.querySelector('.panel').scrollWidth - root.querySelector('.panel').clientWidth"
        assert shadow(page, overflow) <= 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        check_accessible(page, f"375-list-{locale}")
        # The sheet is a modal dialog: Tab and Shift+Tab stay inside it, never reach the page behind.
        assert shadow(page, "root.querySelector('.panel').getAttribute('aria-modal')") == "true"
        inside = "root.querySelector('.panel').contains(root.activeElement)"
        for key in ["Tab"] * 25 + ["Shift+Tab"] * 25:
            page.keyboard.press(key)
            assert shadow(page, inside), f"focus left the sheet after {key}"

        page.locator("#inbox .prefs-toggle").click()
        page.locator('#inbox .prefs input[name="social.email"]').wait_for(timeout=10000)
        assert shadow(page, overflow) <= 0
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        check_accessible(page, f"375-preferences-{locale}")

        page.locator("#inbox .close").click()
        assert not page.evaluate(f"{EL}.hasAttribute('open')")
        assert focused(page) == "bell"


def test_the_example_page_at_375_px(browser, make_app):
    with serve(make_app) as svc:
        svc.user()
        token = svc.token()["token"]
        page = browser.new_page(viewport={"width": 375, "height": 740})
        page.goto(f"{svc.base}/client/example.html?token={token}&locale=ko")
        page.wait_for_function(f"{EL}.inbox?.connected === true", timeout=10000)
        assert not page.evaluate(f"{EL}.hasAttribute('open')")  # no sheet over the page until asked
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        check_accessible(page, "example-375-closed")
        page.locator("#inbox .bell").click()
        assert page.locator("#inbox .panel").bounding_box()["width"] == 375
        check_accessible(page, "example-375-open-ko")
