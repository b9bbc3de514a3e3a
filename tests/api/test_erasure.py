"""Erasure (DELETE /v1/recipients/{user_id}) and the facts stored per message: no address,
device token or text in clear, while every decision can still be re-explained and replayed."""

from __future__ import annotations

import json

from sqlalchemy import select

from orchestrator.sending.stored_facts import redact_stored, stored_message, text_shape
from orchestrator.storage.models import Attempt, AuditEntry, Device, InAppToken, Message, ReceiptEvent, Recipient
from policies import Device as FactsDevice
from policies import MessageFacts, RecipientFacts
from policies.segments import count_segments

EMAIL, PHONE, TOKEN = "grace.hopper@example.org", "+447400123456", "fcm-device-token-0123456789"
BODY = "Your verification code is 271828"
SECRETS = (EMAIL, PHONE, TOKEN, BODY, "7400123456", "grace.hopper")


def _setup(client, make_key):
    backend = make_key(("send", "read", "recipients", "inapp:tokens"), name="backend")
    compliance = make_key(("compliance:read",), name="compliance")
    r = client.put("/v1/recipients/u-grace", headers=backend, json={
        "email": EMAIL, "phone": PHONE, "devices": [{"token": TOKEN, "platform": "fcm"}]})
    assert r.status_code == 201
    token = client.post("/v1/recipients/u-grace/inapp-token", headers=backend).get_json()["token"]
    return backend, compliance, {"Authorization": f"Bearer {token}"}


def _send(client, headers, category="security_alert", body=BODY):
    r = client.post("/v1/messages", headers=headers, json={
        "recipient": {"user_id": "u-grace"}, "category": category, "urgency": "critical",
        "content": {"title": "Sign-in", "body": body}})
    assert r.status_code == 202, r.get_json()
    return r.get_json()["id"]


def _no_secret_in(value) -> None:
    text = json.dumps(value, default=str)
    for secret in SECRETS:
        assert secret not in text, secret


def test_stored_decision_facts_keep_no_address_token_or_text(client, make_key, state):
    backend, compliance, _ = _setup(client, make_key)
    message_id = _send(client, backend)
    with state.db.session() as s:
        facts = s.get(Message, message_id).decision_facts
    _no_secret_in(facts)
    assert facts["recipient"]["email"] and facts["recipient"]["phone"] and facts["recipient"]["devices"]
    explained = client.get(f"/v1/messages/{message_id}/explain", headers=compliance).get_json()
    assert explained["matches"] is True, explained["differences"]
    _no_secret_in(explained)


def test_text_shape_keeps_encoding_and_segments():
    for text in ("hello {world} ~ €", "안녕하세요 😀 hi", "x" * 161, "€" * 80, "😀" * 40 + "a", ""):
        assert count_segments(text_shape(text)) == count_segments(text)
    stored = stored_message(MessageFacts(category="otp", title="Code", body=BODY))
    assert stored["title"] == stored["body"] == "" and stored["content_bytes"] == len("Code") + len(BODY)


def test_redaction_is_idempotent_and_masks_every_address():
    facts = {"message": MessageFacts(category="otp", title="Code", body=BODY).to_dict(),
             "recipient": RecipientFacts(user_id="u", email="a*b@example.org", phone=PHONE,
                                         devices=(FactsDevice(TOKEN, "fcm"),)).to_dict(),
             "now": "2026-03-10T12:00:00+00:00"}
    once = redact_stored(facts)
    assert redact_stored(once) == once
    _no_secret_in(once)
    assert "a*b@" not in json.dumps(once) and once["recipient"]["email"] == "a***@example.org"
    replayed = RecipientFacts.from_dict(once["recipient"])  # still valid facts for the engine
    assert replayed.devices[0].platform == "fcm" and replayed.phone


def test_erasure_removes_the_person_and_keeps_decisions_explainable(client, make_key, state, drain):
    backend, compliance, user = _setup(client, make_key)
    sent = _send(client, backend)
    drain()  # delivered: attempts carry addresses, receipts their raw payloads
    pending = _send(client, backend, category="onboarding", body="Welcome aboard")  # left queued
    with state.db.session() as s:  # an old message whose facts were stored in clear, before masking
        old = s.get(Message, sent)
        old.decision_facts = {**old.decision_facts, "recipient": {
            **old.decision_facts["recipient"], "email": EMAIL, "phone": PHONE,
            "devices": [{"token": TOKEN, "platform": "fcm", "active": True}]},
            "message": {**old.decision_facts["message"], "body": BODY, "sms_text": f"Sign-in\n{BODY}"}}
        assert s.scalar(select(Attempt.address).where(Attempt.message_id == sent,
                                                      Attempt.address.is_not(None)).limit(1))

    r = client.delete("/v1/recipients/u-grace", headers=backend)
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    assert result["erased"] and result["profile_deleted"] and result["devices_deleted"] == 1
    assert result["inapp_tokens_deleted"] == 1 and result["messages_redacted"] == 2
    assert result["attempts_cancelled"] >= 1

    assert client.get("/v1/recipients/u-grace", headers=backend).status_code == 404
    assert client.get("/v1/inbox", headers=user).status_code == 401
    for message_id in (sent, pending):
        shown = client.get(f"/v1/messages/{message_id}", headers=backend).get_json()
        assert shown["erased_at"] is not None
        assert all(a["to"] is None for a in shown["attempts"])
        _no_secret_in(shown)
        explained = client.get(f"/v1/messages/{message_id}/explain", headers=compliance).get_json()
        assert explained["matches"] is True, explained["differences"]
        assert explained["replayed"]["steps"] == explained["stored"]["steps"]
        _no_secret_in(explained)
    with state.db.session() as s:
        assert s.get(Recipient, "u-grace") is None
        assert not s.scalars(select(Device).where(Device.user_id == "u-grace")).all()
        assert not s.scalars(select(InAppToken).where(InAppToken.user_id == "u-grace")).all()
        for m in s.scalars(select(Message).where(Message.user_id == "u-grace")):
            assert m.content == {} and m.overrides == {}
            _no_secret_in(m.decision_facts)
        assert all(a.address is None for a in s.scalars(select(Attempt).where(Attempt.user_id == "u-grace")))
        assert {a.status for a in s.scalars(select(Attempt).where(Attempt.message_id == pending))} == {"cancelled"}
        assert s.get(Message, pending).status == "cancelled"
        for raw in s.scalars(select(ReceiptEvent.raw).where(ReceiptEvent.message_id.in_([sent, pending]))):
            _no_secret_in(raw)
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "recipient.erase")).one()
        assert entry.subject == "u-grace" and entry.actor == "backend" and entry.id == result["audit_entry_id"]
    assert client.get("/v1/audit/verify", headers=compliance).get_json()["ok"] is True
    assert drain() == []  # nothing left to send to an erased person
    simulated = client.post(f"/v1/policies/{explained['policy_version']}/simulate", headers=compliance,
                            json={"days": 30}).get_json()
    assert simulated["messages"] >= 2 and simulated["error_count"] == 0

    again = client.delete("/v1/recipients/u-grace", headers=backend).get_json()
    assert again["erased"] and not again["profile_deleted"] and again["messages_redacted"] == 2


def test_erasure_needs_the_recipients_scope_and_a_valid_user_id(client, make_key):
    sender = make_key(("send", "read"), name="sender")
    admin = make_key(("recipients",), name="people")
    r = client.delete("/v1/recipients/u-1", headers=sender)
    assert r.status_code == 403 and r.get_json()["error"]["field"] == "Authorization"
    assert client.delete("/v1/recipients/u-1").status_code == 401
    for bad in ("a%00b", "x" * 201, "bad%20id"):
        r = client.delete(f"/v1/recipients/{bad}", headers=admin)
        assert r.status_code == 422 and r.get_json()["error"]["field"] == "user_id", bad


def test_erasure_cancels_scheduled_messages_and_confirmation_timers(client, make_key, state, clock, drain):
    """Nothing reaches an erased person later: a message waiting for its send_at is cancelled
    (the release never decides it), and a legal notice's reminder timer stops."""
    from datetime import timedelta

    from orchestrator.storage.models import Confirmation

    backend, _, _ = _setup(client, make_key)
    r = client.post("/v1/messages", headers=backend, json={
        "recipient": {"user_id": "u-grace"}, "category": "security_alert", "urgency": "critical",
        "send_at": (clock.now + timedelta(hours=1)).isoformat(), "content": {"title": "Later", "body": BODY}})
    assert r.status_code == 202 and r.get_json()["status"] == "scheduled", r.get_json()
    scheduled_id = r.get_json()["id"]
    notice_id = _send(client, backend, category="legal_notice", body="Our terms change on 1 May")
    drain()
    with state.db.session() as s:
        assert s.get(Confirmation, notice_id).due_at is not None
    assert client.delete("/v1/recipients/u-grace", headers=backend).status_code == 200
    clock.advance(hours=2)
    state.dispatcher.sweep_once()
    drain()
    with state.db.session() as s:
        message = s.get(Message, scheduled_id)
        assert message.status == "cancelled" and message.attempts == [] and message.content == {}
        assert s.get(Confirmation, notice_id).due_at is None
    shown = client.get(f"/v1/messages/{scheduled_id}", headers=backend).get_json()
    assert shown["status"] == "cancelled" and shown["cancelled"]["by"] == {"reason": "recipient_erased"}
