"""The drop-in client in a real browser (Debian's Chromium, headless, via Playwright)
against the real server with the embedded worker: the example page shows a message sent
through the API within 2 s; clicking it reports read and clicked, which cancels the
pending push escalation; a reconnect loses nothing and shows nothing twice. SQLite only
(the routes it calls are covered on both databases by test_inbox_api.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from orchestrator.app_state import EXTENSION_KEY
from tests.inapp.browser_kit import wait_for
from tests.inapp.conftest import key_for
from tests.live_server import running

ROWS = "orchestrator-inbox li[data-id]"  # Playwright's CSS pierces the open shadow root

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def server(make_app):
    with running(make_app) as (app, base, asgi):
        yield base, key_for(app), app.extensions[EXTENSION_KEY], asgi



def test_example_page_shows_clicks_and_resumes_without_loss_or_repeats(browser, server):
    base, auth, st, asgi = server
    api = httpx.Client(base_url=base, headers=auth, timeout=10)
    r = api.put("/v1/recipients/u-1", json={
        "email": "ada@example.com", "last_active_at": datetime.now(UTC).isoformat(),
        "consents": {"push": True}, "devices": [{"token": "fcm-device-token-1", "platform": "fcm"}]})
    assert r.status_code in (200, 201), r.text
    token = api.post("/v1/recipients/u-1/inapp-token").json()["token"]

    def in_app(message_id):
        return next(a for a in api.get(f"/v1/messages/{message_id}").json()["attempts"] if a["channel"] == "in_app")

    def send(body):
        r = api.post("/v1/messages", json={"recipient": {"user_id": "u-1"}, "category": "social",
                                           "content": {"title": "Ada", "body": body}})
        assert r.status_code == 202, r.text
        steps = [(s["channel"], s["mode"], s["unless_status"]) for s in r.json()["route"]["steps"]]
        assert steps[:2] == [("in_app", "first", None), ("push", "escalate", "read")], steps
        return r.json()["id"]

    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/client/example.html?token={token}")
    page.wait_for_function("document.getElementById('inbox').inbox?.connected === true", timeout=5000)
    assert "token=" not in page.url  # the page takes the token out of the address bar

    # (2) A message sent through the API shows up (within 5 s: room for a loaded CI box).
    first = send("Are you coming tonight?")
    row = page.locator(ROWS)
    row.first.wait_for(timeout=5000)
    assert "Are you coming tonight?" in row.first.inner_text()
    first_attempt = in_app(first)
    assert row.first.get_attribute("data-id") == first_attempt["id"]
    page.locator("orchestrator-inbox .badge").filter(has_text="1").wait_for(timeout=5000)
    wait_for(lambda: in_app(first)["seen_at"], "the shown item to be reported seen")

    # (3) Clicking it reports read and clicked; the pending push escalation is cancelled.
    row.first.click()
    page.wait_for_function("!document.getElementById('inbox').shadowRoot.querySelector('li.unread')",
                           timeout=5000)
    # The badge shows the server's count only: it clears when the server's `unread` arrives.
    page.locator("orchestrator-inbox .badge").wait_for(state="hidden", timeout=5000)
    attempt = wait_for(lambda: (a := in_app(first))["clicked_at"] and a, "the click to be recorded")
    assert attempt["read_at"] and attempt["status"] == "delivered"
    st.dispatcher.sweep_once()
    push = [a for a in api.get(f"/v1/messages/{first}").json()["attempts"] if a["channel"] == "push"]
    assert [a["status"] for a in push] == ["cancelled"]

    # (4) Disconnected, a message arrives; after the reconnect each item is listed once.
    page.evaluate("document.getElementById('inbox').inbox.disconnect()")
    wait_for(lambda: asgi.hub.open_count == 0, "the server to see the stream closed")
    second = send("Table for two at eight")
    wait_for(lambda: in_app(second)["status"] == "sent", "the worker to deliver the second message")
    assert page.locator(ROWS).count() == 1
    page.evaluate("document.getElementById('inbox').inbox.connect()")
    page.locator(ROWS).filter(has_text="Table for two at eight").wait_for(timeout=5000)
    wait_for(lambda: in_app(second)["status"] == "delivered", "the stream to deliver the second message")
    # A resumed stream replays its overlap (at least the last item): the client drops repeats.
    received = page.evaluate("document.getElementById('inbox').inbox.received")
    page.evaluate("document.getElementById('inbox').inbox.reconnect()")
    page.wait_for_function(f"document.getElementById('inbox').inbox.received > {received}", timeout=5000)
    ids = page.locator(ROWS).evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [in_app(second)["id"], first_attempt["id"]]  # newest first, each once
    assert page.evaluate("document.getElementById('inbox').inbox.list.length") == 2
    assert errors == []
    api.close()
