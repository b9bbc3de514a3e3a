"""Issue #11 defect 7 end to end over a real server: over the in-app cap, a user whose stream
is open gets the item as a quiet entry (`quiet: true` on the stream, the unread count moves),
and the bundled client (in a real browser) lists it without an `item` (toast) event."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from tests.inapp.test_client_browser import server  # noqa: F401
from tests.inapp.test_stream_live import live, mint, stream  # noqa: F401

CAP = 3  # the default policy's in_app_cap_per_day


def _send(base, auth, body):
    r = httpx.post(f"{base}/v1/messages", headers=auth, timeout=5, json={
        "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"title": "Hi", "body": body}})
    assert r.status_code == 202, r.text
    return r.json()


def _user(base, auth):
    r = httpx.put(f"{base}/v1/recipients/u-1", headers=auth, timeout=5, json={
        "email": "a@example.com", "last_active_at": datetime.now(UTC).isoformat(),
        "consents": {"push": True}, "devices": [{"token": "fcm-device-token-1", "platform": "fcm"}]})
    assert r.status_code in (200, 201), r.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_over_the_cap_the_stream_carries_a_quiet_item_and_the_unread_count(live):  # noqa: F811
    base, auth, _, _ = live(worker=True)
    _user(base, auth)
    token, _ = mint(base, auth)
    events = stream(base, token)
    try:
        for n in range(CAP):
            _send(base, auth, f"Step {n}")
            assert events.next("message", timeout=5).json()["quiet"] is False
        over = _send(base, auth, "One more tip")
        assert over["route"]["steps"][0]["quiet"] is True
        item = events.next("message", timeout=5).json()
        assert item["message_id"] == over["id"] and item["quiet"] is True
        while events.next("unread", timeout=5).json()["unread"] != CAP + 1:
            pass
        attempts = httpx.get(f"{base}/v1/messages/{over['id']}", headers=auth, timeout=5).json()["attempts"]
        assert {a["channel"]: a["status"] for a in attempts} == {
            "in_app": "delivered", "push": "cancelled", "email": "cancelled"}
    finally:
        events.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_client_lists_a_quiet_item_without_an_item_event(browser, server):  # noqa: F811
    base, auth, _, _ = server
    _user(base, auth)
    token = httpx.post(f"{base}/v1/recipients/u-1/inapp-token", headers=auth, timeout=5).json()["token"]
    page = browser.new_page()
    page.goto(f"{base}/client/example.html?token={token}")
    page.wait_for_function("document.getElementById('inbox').inbox?.connected === true", timeout=5000)
    page.evaluate("window.shown = []; document.getElementById('inbox').inbox"
                  ".addEventListener('item', (e) => window.shown.push(e.detail.body))")
    for n in range(CAP + 1):
        _send(base, auth, f"Tip {n}")
    page.wait_for_function(f"document.getElementById('inbox').inbox.list.length === {CAP + 1}", timeout=5000)
    page.locator("orchestrator-inbox .badge").filter(has_text=str(CAP + 1)).wait_for(timeout=5000)
    assert sorted(page.evaluate("window.shown")) == [f"Tip {n}" for n in range(CAP)]
