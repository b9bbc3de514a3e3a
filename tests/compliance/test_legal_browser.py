"""The legal notices page in a real browser (Debian's Chromium through Playwright) with
axe-core: at desktop width and at 375 px, 0 accessibility violations and no horizontal page
scroll, with notices at every stage (opened, acknowledged, escalated, undeliverable) on it.
SQLite only (the page's database behaviour is covered on both by tests/dispatch/test_legal_records.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .browser_kit import check_page, serving, sign_in

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

SHOTS = Path(os.environ.get("SHOTS_DIR", "/tmp/shots/legal"))
TERMS = "Our terms change on 1 April; please read the new terms of service before then."


@pytest.fixture
def app(make_app):
    return make_app(SECRET_KEY="browser-test-secret", PUBLIC_BASE_URL="http://localhost")


@pytest.fixture
def server(app):
    with serving(app) as base:
        yield base


def _seed(client, auth, clock, drain) -> dict[str, str]:
    """Notices at several stages; returns message id by what happened to it."""
    def put(user_id, **extra):
        body = {"phone": "+44 7400 123456", "timezone": "UTC", "last_active_at": clock.now.isoformat(),
                "devices": [{"token": f"fcm-{user_id}", "platform": "fcm"}], **extra}
        assert client.put(f"/v1/recipients/{user_id}", headers=auth, json=body).status_code in (200, 201)

    def send(user_id):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": user_id}, "category": "legal_notice",
            "content": {"title": "Terms of service update", "body": TERMS}})
        assert r.status_code == 202, r.get_json()
        return r.get_json()["id"]

    put("customer-with-a-rather-long-user-identifier-0001", email="ada@example.com")
    put("u-2")  # no email: inbox and push
    put("u-3", consents={"in_app": False})  # no email, no inbox: undeliverable
    ids = {"escalated": send("customer-with-a-rather-long-user-identifier-0001")}
    clock.advance(minutes=1)
    ids["opened"] = send("u-2")
    ids["undeliverable"] = send("u-3")
    drain()
    token = client.post("/v1/recipients/u-2/inapp-token", headers=auth).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    items = client.get("/v1/inbox", headers=headers).get_json()["items"]
    [item] = [i for i in items if i["message_id"] == ids["opened"]]
    client.post(f"/v1/inbox/{item['id']}/read", headers=headers)
    client.post(f"/v1/inbox/{item['id']}/acknowledged", headers=headers)
    clock.advance(days=15)
    drain()
    drain()
    return ids


@pytest.mark.parametrize("width", [1280, 375])
def test_the_legal_page_is_accessible_and_fits_a_phone(browser, server, client, auth, clock, drain, make_key,
                                                       width):
    ids = _seed(client, auth, clock, drain)
    key = make_key(("compliance:read",), name="carol")["Authorization"].removeprefix("Bearer ")
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, server, key, "/review/legal")

    table = page.locator("#legal-table")
    assert "undeliverable" in table.locator(f'tr[data-id="{ids["undeliverable"]}"]').inner_text()
    opened = table.locator(f'tr[data-id="{ids["opened"]}"]').inner_text()
    assert "opened" in opened and "inbox_open" in opened and "acknowledged" in opened and "u-2" in opened
    assert "escalated" in table.locator(f'tr[data-id="{ids["escalated"]}"]').inner_text()
    check_page(page, f"legal-{width}", SHOTS)

    # Keyboard only: the stage filter narrows the list to the undeliverable notice.
    page.get_by_label("Stage").select_option("undeliverable")
    page.get_by_role("button", name="Show").press("Enter")
    page.wait_for_url(f"{server}/review/legal?stage=undeliverable")
    rows = page.locator("#legal-table tbody tr[data-id]")
    assert rows.count() == 1 and "none is usable" in rows.first.inner_text()
    check_page(page, f"legal-undeliverable-{width}", SHOTS)
    context.close()
