"""Issue #20 §5: legal notices whose records hold up, on both databases.

- "read all" in the inbox never marks a legal notice read (and marks the others);
- opening a notice and acknowledging it are recorded apart, each with how and when;
- a legal notice to a user without email is not dropped: it goes to the inbox (where the
  acknowledgement is tracked) and push, through the real FCM wire fake, and is reminded by push;
- a notice the policy cannot deliver at all is listed as undeliverable on the legal page;
- the legal page pages past 500 notices with cursors."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import insert

from orchestrator.storage.models import Confirmation, Message, new_id
from tests.compliance.test_review_pages import login, text

from .conftest import FCM_DEVICE

LINK = re.compile(r"http://localhost/ack/[A-Za-z0-9_.\-]+")
TERMS = "Our terms change on 1 April."


@pytest.fixture
def app(make_app, smtp, fcm):
    return make_app(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM="Orchestrator <app@mail.example.org>",
                    SMTP_STARTTLS="false", PUBLIC_BASE_URL="http://localhost",
                    FCM_CREDENTIALS_JSON=json.dumps(fcm.service_account_info),
                    FCM_ENDPOINT=fcm.base_url, FCM_TOKEN_URI=fcm.token_uri)


@pytest.fixture
def tokens(client, auth):
    def mint(user_id="u-1"):
        body = client.post(f"/v1/recipients/{user_id}/inapp-token", headers=auth).get_json()
        return {"Authorization": f"Bearer {body['token']}"}, body["token_id"]

    return mint


def put_user(client, auth, clock, user_id="u-1", *, email=True, **extra):
    """An active user with a phone and a push device; with or without an email address."""
    body = {"phone": "+44 7400 123456", "timezone": "UTC", "devices": FCM_DEVICE,
            "last_active_at": clock.now.isoformat(), "consents": {"sms": True, "email": True, "push": True}}
    if email:
        body["email"] = "ada@example.com"
    body.update(extra)
    r = client.put(f"/v1/recipients/{user_id}", headers=auth, json=body)
    assert r.status_code in (200, 201), r.get_json()


def inbox(client, headers) -> dict[str, dict]:
    return {i["message_id"]: i for i in client.get("/v1/inbox", headers=headers).get_json()["items"]}


def confirmation(state, message_id) -> Confirmation:
    with state.db.session() as s:
        row = s.get(Confirmation, message_id)
        s.expunge(row)
        return row


def test_read_all_leaves_a_legal_notice_unread_and_marks_the_others(client, auth, clock, send, drain, state,
                                                                   message, tokens):
    put_user(client, auth, clock)
    client.post("/v1/recipients/u-1/presence", headers=auth)
    notice = send(category="legal_notice", urgency="normal", body=TERMS)["id"]
    tour = send(category="onboarding", urgency="normal", body="Take the tour")["id"]
    drain()
    headers, _ = tokens()
    items = inbox(client, headers)
    assert items[notice]["requires_acknowledgement"] is True and items[tour]["requires_acknowledgement"] is False
    assert items[notice]["archived_at"] is None and items[notice]["read_at"] is None

    r = client.post("/v1/inbox/read-all", headers=headers)
    assert r.status_code == 200 and r.get_json() == {"read": 1, "requires_acknowledgement": 1}
    after = client.get("/v1/inbox", headers=headers).get_json()
    assert after["unread"] == 1
    items = {i["message_id"]: i for i in after["items"]}
    assert items[notice]["read_at"] is None and items[tour]["read_at"] is not None
    assert message(notice)["status"] not in ("read", "acknowledged")
    assert confirmation(state, notice).read_at is None
    # Pressing it again changes nothing: the notice still waits to be opened or acknowledged.
    assert client.post("/v1/inbox/read-all", headers=headers).get_json() == {"read": 0, "requires_acknowledgement": 1}


def test_opening_and_acknowledging_are_recorded_apart(app, client, auth, clock, send, drain, state, message,
                                                     tokens, smtp, make_key):
    put_user(client, auth, clock)
    client.post("/v1/recipients/u-1/presence", headers=auth)
    opened = send(category="legal_notice", urgency="normal", body=TERMS)["id"]
    acked_unopened = send(category="legal_notice", urgency="normal", body=TERMS)["id"]
    by_link = send(category="legal_notice", urgency="normal", body=TERMS)["id"]
    drain()
    headers, token_id = tokens()
    items = inbox(client, headers)

    clock.advance(minutes=5)
    opened_at = clock.now
    assert client.post(f"/v1/inbox/{items[opened]['id']}/read", headers=headers).status_code == 200
    row = confirmation(state, opened)
    assert (row.read_at, row.read_via, row.read_token_id) == (opened_at, "inbox_open", token_id)
    assert row.read_attempt_id == items[opened]["id"]
    assert row.acknowledged_at is None and row.stage == "awaiting"  # opened is not acknowledged
    clock.advance(minutes=5)
    client.post(f"/v1/inbox/{items[opened]['id']}/read", headers=headers)  # the first opening is kept
    assert confirmation(state, opened).read_at == opened_at
    assert client.post(f"/v1/inbox/{items[opened]['id']}/acknowledged", headers=headers).status_code == 200
    row = confirmation(state, opened)
    assert (row.stage, row.acknowledged_via, row.acknowledged_at, row.read_at) == (
        "acknowledged", "inbox", clock.now, opened_at)

    # Acknowledged straight from the list, never opened: the record says so.
    client.post(f"/v1/inbox/{items[acked_unopened]['id']}/acknowledged", headers=headers)
    row = confirmation(state, acked_unopened)
    assert (row.acknowledged_via, row.read_at, row.read_via) == ("inbox", None, None)
    assert message(acked_unopened)["status"] == "acknowledged"

    # Acknowledged through the email's signed link.
    links = [LINK.findall(m.message.get_body(preferencelist=("plain",)).get_content())[0] for m in smtp.received]
    for url in links:  # the three emails' links; the two notices acknowledged already keep their first record
        client.post(url.removeprefix("http://localhost"))
    row = confirmation(state, by_link)
    assert (row.acknowledged_via, row.read_at) == ("email_link", None)
    assert confirmation(state, acked_unopened).acknowledged_via == "inbox"

    # The legal page shows each stage with its channel.
    auditor = login(app, make_key(("compliance:read",), name="carol"))
    page = auditor.get("/review/legal")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rows = dict(re.findall(r'<tr data-id="(\w+)" data-stage="\w+">(.*?)</tr>', html, re.S))
    assert "opened" in rows[opened] and "via inbox_open" in rows[opened] and "via inbox" in rows[opened]
    assert "opened" not in rows[acked_unopened] and "acknowledged" in rows[acked_unopened]
    assert "via email_link" in rows[by_link] and "opened" not in rows[by_link]
    assert "sent" in rows[opened] and "via email, in_app" in rows[opened]
    assert "u-1" in rows[opened] and "Hi" in rows[opened]  # user and title


def test_a_legal_notice_to_a_user_without_email_goes_to_the_inbox_with_a_tracked_confirmation(
        client, auth, clock, send, drain, state, message, tokens, fcm, smtp):
    put_user(client, auth, clock, email=False)  # the app, push and SMS; no email; offline
    sent = send(category="legal_notice", urgency="normal", body=TERMS)
    assert sent["status"] == "accepted", sent
    steps = sent["route"]["steps"]
    assert [(s["channel"], s["mode"]) for s in steps] == [("in_app", "first"), ("push", "parallel")]
    assert sent["route"]["requires"] == ["delivery_confirmation", "read_confirmation"]
    drain()
    notice = sent["id"]
    assert len(fcm.sends) == 1 and smtp.received == []
    assert confirmation(state, notice).stage == "awaiting"
    assert {a["channel"]: a["status"] for a in message(notice)["attempts"]}["push"] == "sent"

    # The user opens the app: the notice is in the inbox, marked as needing acknowledgement.
    headers, token_id = tokens()
    item = inbox(client, headers)[notice]
    assert item["requires_acknowledgement"] is True
    assert client.post("/v1/inbox/read-all", headers=headers).get_json()["requires_acknowledgement"] == 1
    assert client.post(f"/v1/inbox/{item['id']}/acknowledged", headers=headers).status_code == 200
    assert message(notice)["status"] == "acknowledged"
    row = confirmation(state, notice)
    assert (row.stage, row.acknowledged_via, row.acknowledged_token_id) == ("acknowledged", "inbox", token_id)


def test_without_email_the_reminder_goes_by_push(client, auth, clock, send, drain, state, message, fcm, smtp):
    put_user(client, auth, clock, email=False)
    notice = send(category="legal_notice", urgency="normal", body=TERMS)["id"]
    drain()
    assert len(fcm.sends) == 1
    clock.advance(days=7, seconds=1)
    drain()
    # A push interrupts: the reminder waits for the time of day the first push went (quiet hours allowed it).
    assert len(fcm.sends) == 1
    assert confirmation(state, notice).stage == "reminded"
    clock.advance(days=1)
    drain()
    assert len(fcm.sends) == 2 and smtp.received == []
    pushes = [(a["mode"], a["status"]) for a in message(notice)["attempts"] if a["channel"] == "push"]
    assert pushes == [("parallel", "sent"), ("reminder", "sent")]
    row = confirmation(state, notice)
    assert (row.stage, row.reminders_sent) == ("reminded", 1)
    clock.advance(days=7)
    drain()
    assert message(notice)["status"] == "unacknowledged"


def test_a_notice_the_policy_cannot_deliver_is_listed_as_undeliverable(app, client, auth, clock, send, state,
                                                                       make_key):
    # No email, and in-app turned off: push alone cannot record an acknowledgement.
    put_user(client, auth, clock, email=False, consents={"in_app": False, "push": True, "sms": True})
    sent = send(category="legal_notice", urgency="normal", body=TERMS)
    assert sent["status"] == "suppressed"
    row = confirmation(state, sent["id"])
    assert row.stage == "undeliverable" and row.due_at is None
    assert "needs one of email, in_app, none is usable" in row.undeliverable_reason
    auditor = login(app, make_key(("compliance:read",), name="carol"))
    body = text(auditor.get("/review/legal?stage=undeliverable"))
    assert sent["id"] in body and "undeliverable" in body and "none is usable" in body
    csv_text = auditor.get("/review/legal.csv").get_data(as_text=True)
    assert "undeliverable" in csv_text and "none is usable" in csv_text
    clock.advance(days=30)
    state.dispatcher.sweep_once()  # no reminder or escalation for what was never sent
    assert confirmation(state, sent["id"]).stage == "undeliverable"


def test_the_legal_page_pages_past_500_with_cursors(app, state, clock, make_key):
    total = 523
    start = clock.now - timedelta(days=1)
    messages, confirmations = [], []
    for i in range(total):
        at = start + timedelta(seconds=i // 2)  # pairs share a time: the id breaks the tie
        mid = new_id()
        messages.append({"id": mid, "user_id": f"user-{i}", "category": "legal_notice", "urgency": "normal",
                         "marketing": False, "status": "sent", "content": {"title": f"Terms {i}", "body": TERMS},
                         "metadata": {}, "overrides": {}, "policy_version": "p", "route": {}, "decision_facts": {},
                         "decided_at": at, "created_at": at, "updated_at": at})
        confirmations.append({"message_id": mid, "user_id": f"user-{i}", "stage": "awaiting", "due_at": None,
                              "remind_after_seconds": 1, "escalate_after_seconds": 2, "reminders_sent": 0,
                              "created_at": at, "undeliverable_reason": None})
    with state.db.engine.begin() as conn:  # two multi-row INSERTs
        conn.execute(insert(Message.__table__), messages)
        conn.execute(insert(Confirmation.__table__), confirmations)
    auditor = login(app, make_key(("compliance:read",), name="carol"))
    seen: list[str] = []
    url = "/review/legal"
    pages = 0
    while url:
        r = auditor.get(url)
        assert r.status_code == 200
        html = r.get_data(as_text=True)
        ids = re.findall(r'<tr data-id="(\w+)"', html)
        seen += ids
        pages += 1
        nxt = re.search(r'<a rel="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else None
        assert pages <= 3
    assert pages == 2 and len(seen) == total and len(set(seen)) == total
    newest_first = [m["id"] for m in sorted(messages, key=lambda m: (m["created_at"], m["id"]), reverse=True)]
    assert seen == newest_first
    csv_lines = auditor.get("/review/legal.csv").get_data(as_text=True).strip().split("\n")
    assert len(csv_lines) == total + 1
    bad = auditor.get("/review/legal?cursor=not-a-cursor")
    assert bad.status_code == 422 and "cursor" in text(bad)
    assert auditor.get("/review/legal?cursor=%00").status_code == 422
    for limit in ("0", "501", "abc", "9" * 50, "%00"):
        r = auditor.get(f"/review/legal?limit={limit}")
        assert r.status_code == 422 and "limit" in text(r), limit
    small = auditor.get("/review/legal?limit=10&stage=awaiting").get_data(as_text=True)
    assert len(re.findall(r'<tr data-id="(\w+)"', small)) == 10
