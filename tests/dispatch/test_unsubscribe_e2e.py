"""RFC 8058 one-click unsubscribe end to end: an email of an unsubscribable category goes
through a real SMTP server (aiosmtpd), the test reads its List-Unsubscribe headers off the
wire and follows them as a mailbox provider and a person would."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest

from orchestrator.storage.models import Recipient

BASE = "https://notify.example.com"
USER = "u-unsub-7f3a"


@pytest.fixture
def app(make_app, smtp):
    return make_app(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM="News <news@mail.example.org>",
                    SMTP_STARTTLS="false", PUBLIC_BASE_URL=BASE, SECRET_KEY="test-secret-key")


@pytest.fixture
def emailed(client, auth, drain, smtp):
    """Sends a message to a user reachable by email only; returns (accept body, the email)."""
    client.put(f"/v1/recipients/{USER}", headers=auth, json={"email": "reader@example.com", "timezone": "UTC"})

    def run(category="feature_announcement"):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": USER}, "category": category, "content": {"title": "News", "body": "Hello"}})
        assert r.status_code == 202
        body = r.get_json()
        before = len(smtp.received)
        drain()
        return body, (smtp.received[-1].message if len(smtp.received) > before else None)

    return run


def _one_click_path(email) -> str:
    header = email["List-Unsubscribe"]
    assert header.startswith(f"<{BASE}/u/") and header.endswith(">"), header
    return urlsplit(header[1:-1]).path


def test_unsubscribable_email_carries_one_click_headers_and_the_post_turns_the_category_off(
        emailed, client, state):
    body, email = emailed()
    assert [s["channel"] for s in body["route"]["steps"]] == ["email"]
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    path = _one_click_path(email)
    token = path.removeprefix("/u/")
    # The token names the user and the category, but not in clear (nor in readable base64).
    decoded = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert USER not in token and USER.encode() not in decoded and b"feature_announcement" not in decoded

    # A person opening the link sees a page with a button; the GET itself changes nothing.
    page = client.get(path)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert 'method="post"' in page.get_data(as_text=True) and "feature announcement" in page.get_data(as_text=True)
    with state.db.session() as s:
        assert not s.get(Recipient, USER).preferences

    # The mailbox provider's RFC 8058 POST: no API key, no cookie, no CSRF token.
    r = client.post(path, data="List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and "no longer receive" in r.get_data(as_text=True)
    with state.db.session() as s:
        assert s.get(Recipient, USER).preferences == {"feature_announcement": {"email": False}}
    assert client.post(path).status_code == 200  # idempotent

    # The next announcement has no usable channel; the preference is named.
    body, email = emailed()
    assert email is None and body["status"] == "suppressed"
    excluded = {e["channel"]: e for e in body["route"]["excluded"]}
    assert excluded["email"]["rule"] == "engine:preference"
    assert "preferences.feature_announcement.email" in excluded["email"]["reason"]
    # Other categories still reach the user by email.
    _, email = emailed("transactional")
    assert email is not None


@pytest.mark.parametrize("category", ["transactional", "security_alert"])
def test_emails_of_other_categories_carry_no_unsubscribe_headers(emailed, category):
    _, email = emailed(category)
    assert email is not None
    assert email["List-Unsubscribe"] is None and email["List-Unsubscribe-Post"] is None


def test_a_tampered_or_foreign_token_is_a_clear_404(emailed, client):
    _, email = emailed()
    path = _one_click_path(email)
    tampered = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for bad in (tampered, "/u/not-a-token", "/u/" + "A" * 2000):
        r = client.post(bad)
        assert r.status_code == 404
        assert r.get_json()["error"]["field"] == "token"


def test_a_token_for_a_category_the_policy_now_locks_changes_nothing(client, state):
    token = state.unsubscribe.token(USER, "security_alert")
    r = client.post(f"/u/{token}")
    assert r.status_code == 409
