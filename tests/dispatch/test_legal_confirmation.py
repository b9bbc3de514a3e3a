"""Issue #11 defect 3: legal notices need delivery and read confirmation. The email (through
a real SMTP server) carries a signed, expiring acknowledgement link; the notice is mirrored
in the inbox; the acknowledgement is recorded with who, when and through which channel; a
reminder, then an escalation, follow when it is not acknowledged in the policy's time; the
compliance view and CSV show the state."""

from __future__ import annotations

import re

import pytest

from orchestrator.storage.models import Confirmation

SENDER = "Orchestrator <app@mail.example.org>"
LINK = re.compile(r"http://localhost/ack/[A-Za-z0-9_.\-]+")


@pytest.fixture
def app(make_app, smtp):
    return make_app(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM=SENDER, SMTP_STARTTLS="false",
                    PUBLIC_BASE_URL="http://localhost")


def email_text(received) -> str:
    part = received.message.get_body(preferencelist=("plain",))
    return part.get_content()


def user_token(client, auth):
    body = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()
    return {"Authorization": f"Bearer {body['token']}"}, body["token_id"]


def by_channel(message, message_id):
    out: dict[str, list[dict]] = {}
    for a in message(message_id)["attempts"]:
        out.setdefault(a["channel"], []).append(a)
    return out


@pytest.fixture
def notice(client, auth, user, send, drain, message, clock, smtp):
    def run(online=True):
        user(last_active_at=clock.now.isoformat())
        if online:
            client.post("/v1/recipients/u-1/presence", headers=auth)
        sent = send(category="legal_notice", urgency="normal", body="Our terms change on 1 April.")
        route = sent["route"]
        assert [s["channel"] for s in route["steps"]] == ["email", "in_app"]
        assert route["requires"] == ["delivery_confirmation", "read_confirmation"]
        assert route["confirmation"] == {"remind_after_seconds": 7 * 86400, "escalate_after_seconds": 14 * 86400}
        drain()
        return sent["id"]

    return run


def test_the_email_link_acknowledges_the_notice(client, auth, notice, message, smtp, state, clock):
    message_id = notice()
    [mail] = smtp.received
    text = email_text(mail)
    assert "Our terms change on 1 April." in text
    [url] = LINK.findall(text)
    path = url.removeprefix("http://localhost")
    assert "u-1" not in path and "ada" not in path  # signed ids only, no user data in clear
    # GET shows a confirm button and records nothing (mail scanners fetch links).
    page = client.get(path)
    assert page.status_code == 200 and b'method="post"' in page.data
    assert page.headers["X-Frame-Options"] == "DENY"
    assert message(message_id)["status"] == "sent"
    clock.advance(hours=3)
    done = client.post(path)
    assert done.status_code == 200 and b"recorded" in done.data
    msg = message(message_id)
    assert msg["status"] == "acknowledged"
    with state.db.session() as s:
        row = s.get(Confirmation, message_id)
        assert (row.stage, row.acknowledged_via, row.acknowledged_by) == ("acknowledged", "email_link", "u-1")
        assert row.acknowledged_at == clock.now
        assert row.acknowledged_attempt_id == by_channel(message, message_id)["email"][0]["id"]
    assert client.post(path).status_code == 200  # twice is harmless; the first is kept
    with state.db.session() as s:
        assert s.get(Confirmation, message_id).acknowledged_at == clock.now


def test_a_tampered_or_expired_link_is_refused(client, notice, smtp, clock):
    notice()
    [url] = LINK.findall(email_text(smtp.received[0]))
    path = url.removeprefix("http://localhost")
    bad = client.post(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    assert bad.status_code == 404 and bad.get_json()["error"]["field"] == "token"
    assert client.get("/ack/" + "x" * 500).status_code == 404
    assert 400 <= client.get("/ack/%00").status_code < 500
    clock.advance(days=61)
    gone = client.post(path)
    assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "link_expired"


def test_the_inbox_mirror_acknowledges_with_the_token_id(client, auth, notice, message, state):
    message_id = notice()
    headers, token_id = user_token(client, auth)
    items = client.get("/v1/inbox", headers=headers).get_json()["items"]
    [item] = [i for i in items if i["message_id"] == message_id]
    r = client.post(f"/v1/inbox/{item['id']}/acknowledged", headers=headers)
    assert r.status_code == 200, r.get_json()
    assert message(message_id)["status"] == "acknowledged"
    with state.db.session() as s:
        row = s.get(Confirmation, message_id)
        assert (row.acknowledged_via, row.acknowledged_by, row.acknowledged_token_id) == ("inbox", "u-1", token_id)


def test_an_offline_user_finds_the_notice_in_the_inbox_at_the_next_session(client, auth, notice, message):
    message_id = notice(online=False)
    headers, _ = user_token(client, auth)
    items = client.get("/v1/inbox", headers=headers).get_json()["items"]
    assert [i["message_id"] for i in items] == [message_id]


def test_not_acknowledged_reminder_then_escalation(client, auth, notice, message, smtp, state, clock, drain):
    message_id = notice()
    assert message(message_id)["status"] == "sent"
    clock.advance(days=7, seconds=1)
    drain()
    assert len(smtp.received) == 2  # the reminder, with a link of its own
    emails = by_channel(message, message_id)["email"]
    assert [(a["mode"], a["status"]) for a in emails] == [("first", "sent"), ("reminder", "sent")]
    assert len(LINK.findall(email_text(smtp.received[1]))) == 1
    with state.db.session() as s:
        row = s.get(Confirmation, message_id)
        assert (row.stage, row.reminders_sent) == ("reminded", 1)
    clock.advance(days=7)
    drain()
    assert message(message_id)["status"] == "unacknowledged"
    with state.db.session() as s:
        assert s.get(Confirmation, message_id).stage == "escalated"
    clock.advance(days=30)
    drain()
    assert len(smtp.received) == 2 and message(message_id)["status"] == "unacknowledged"  # final
    # A late acknowledgement still counts (through the reminder's link).
    [late] = LINK.findall(email_text(smtp.received[1]))
    assert client.post(late.removeprefix("http://localhost")).status_code == 200
    assert message(message_id)["status"] == "acknowledged"


def test_an_acknowledged_notice_gets_no_reminder(client, notice, message, smtp, clock, drain):
    message_id = notice()
    [url] = LINK.findall(email_text(smtp.received[0]))
    client.post(url.removeprefix("http://localhost"))
    clock.advance(days=20)
    drain()
    assert len(smtp.received) == 1 and message(message_id)["status"] == "acknowledged"


def test_a_notice_without_confirmation_has_no_link(user, send, drain, smtp):
    user()
    send(category="transactional", urgency="normal", body="Your receipt")
    drain()
    assert not LINK.findall(email_text(smtp.received[0]))


def test_compliance_view_and_csv_show_the_confirmation_state(app, client, auth, make_key, notice, smtp, clock,
                                                            drain, message):
    import csv
    import io

    from tests.compliance.test_review_pages import login, text

    acked = notice()
    [url] = LINK.findall(email_text(smtp.received[0]))
    client.post(url.removeprefix("http://localhost"))
    clock.advance(minutes=1)
    ignored = notice()  # this one is never acknowledged
    clock.advance(days=14, seconds=1)
    drain()
    drain()
    auditor = login(app, make_key(("compliance:read",), name="carol"))
    page = auditor.get("/review/legal")
    assert page.status_code == 200
    body = text(page)
    assert acked in body and ignored in body and "email_link" in body and "escalated" in body
    r = auditor.get("/review/legal.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = {row["message_id"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))}
    assert rows[acked]["stage"] == "acknowledged" and rows[acked]["acknowledged_via"] == "email_link"
    assert rows[acked]["acknowledged_by"] == "u-1" and rows[acked]["reminders_sent"] == "0"
    assert rows[ignored]["stage"] == "escalated" and rows[ignored]["status"] == "unacknowledged"
    assert rows[ignored]["reminders_sent"] == "1" and rows[ignored]["escalated_at"]
    assert rows[ignored]["email_status"] == "sent" and rows[ignored]["acknowledged_at"] == ""
    only = auditor.get("/review/legal.csv?stage=escalated").get_data(as_text=True)
    assert ignored in only and acked not in only
    assert auditor.get("/review/legal?stage=nope").status_code == 422
    assert app.test_client().get("/review/legal").status_code == 302  # signed-in staff only
    reader = login(app, make_key(("policy:write",), name="dave"))
    assert reader.get("/review/legal.csv").status_code == 403


def test_the_page_escapes_the_notice_text(client, auth, user, send, drain, smtp, clock):
    user(last_active_at=clock.now.isoformat())
    send(category="legal_notice", urgency="normal", body='<script>alert(1)</script> & "terms"')
    drain()
    [url] = LINK.findall(email_text(smtp.received[0]))
    page = client.get(url.removeprefix("http://localhost")).get_data(as_text=True)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_a_cancelled_notice_is_neither_reminded_nor_escalated(client, auth, user, send, message, clock, smtp,
                                                               state):
    user(last_active_at=clock.now.isoformat())
    sent = send(category="legal_notice", urgency="normal", body="Our terms change on 1 April.")
    r = client.post(f"/v1/messages/{sent['id']}/cancel", headers=auth)
    assert r.status_code == 200, r.get_json()
    for days in (8, 15):  # past the reminder, then past the escalation
        clock.advance(days=days)
        state.dispatcher.sweep_once()
    assert message(sent["id"])["status"] == "cancelled"
    assert smtp.received == []
    with state.db.session() as s:
        assert s.get(Confirmation, sent["id"]).due_at is None


def test_a_batch_of_notices_gets_a_confirmation_per_recipient(client, auth, user, clock, state):
    for user_id in ("u-1", "u-2"):
        user(user_id=user_id, last_active_at=clock.now.isoformat())
    r = client.post("/v1/messages/batch", headers=auth, json={
        "category": "legal_notice", "content": {"title": "Terms", "body": "Our terms change on 1 April."},
        "recipients": [{"recipient": {"user_id": "u-1"}}, {"recipient": {"user_id": "u-2"}}]})
    assert r.status_code == 202 and r.get_json()["accepted"] == 2, r.get_json()
    with state.db.session() as s:
        for result in r.get_json()["results"]:
            row = s.get(Confirmation, result["id"])
            assert row is not None and row.stage == "awaiting" and row.due_at is not None
