"""Regressions from the durability review: each test is a state the pipeline once got wrong."""

from __future__ import annotations

from orchestrator.dispatch import sweeper as sweeper_mod
from orchestrator.domain.statuses import ReceiptOutcome
from orchestrator.storage.models import ReceiptEvent
from tests.dispatch.conftest import attempts, go_online, mark_in_app

DEVICE = [{"token": "fcm-token-abcdef123456", "platform": "fcm"}]


def test_a_read_cancels_both_the_escalation_and_the_fallback_after_it(client, auth, user, send, drain, message,
                                                                     clock):
    go_online(client, auth, user, clock, DEVICE)
    sent = send(category="social", urgency="normal", body="Bob: hi")
    assert [s["mode"] for s in sent["route"]["steps"]] == ["first", "escalate", "fallback"]
    drain()
    mark_in_app(client, auth, message, sent["id"], "read")
    clock.advance(minutes=30)
    drain()
    msg = message(sent["id"])
    assert {a["channel"]: a["status"] for a in msg["attempts"]} == {
        "in_app": "delivered", "push": "cancelled", "email": "cancelled"}
    assert msg["status"] == "read"


def test_a_seen_in_app_item_cancels_every_later_fallback(client, auth, user, send, drain, message, clock):
    go_online(client, auth, user, clock, DEVICE)
    sent = send(category="onboarding", urgency="normal", body="Take the tour")
    assert [s["mode"] for s in sent["route"]["steps"]][1:] and all(
        s["mode"] == "fallback" for s in sent["route"]["steps"][1:])
    drain()
    mark_in_app(client, auth, message, sent["id"], "seen")
    drain()
    later = [a["status"] for a in message(sent["id"])["attempts"] if a["channel"] != "in_app"]
    assert later and set(later) == {"cancelled"}


def test_a_receipt_parked_while_its_send_committed_is_applied_by_the_sweeper(user, send, drain, message, state,
                                                                           clock, twilio):
    """The race: the webhook parked the receipt (send not committed yet) after the worker's
    own look for parked receipts. The sweeper finds and applies it."""
    user()
    sent = send()
    drain()
    sms = attempts(message, sent["id"], "sms")[0]
    with state.db.session() as s:
        s.add(ReceiptEvent(source="twilio", provider="twilio", provider_message_id=sms["provider_message_id"],
                           provider_event_id=f"{sms['provider_message_id']}:undelivered", status="undelivered",
                           error_code="30003", outcome=ReceiptOutcome.PARKED, applied=False, raw={},
                           received_at=clock.now))
    counts = state.dispatcher.sweep_once()
    assert counts["parked_applied"] == 1
    drain()
    msg = message(sent["id"])
    assert attempts(message, sent["id"], "sms")[0]["status"] == "undelivered"
    assert attempts(message, sent["id"], "email")[0]["status"] == "sent"  # the fallback went out
    assert [r["outcome"] for r in msg["receipts"]] == ["applied"]


def test_waiting_fallbacks_do_not_starve_the_sweeper(monkeypatch, state, user, send, drain, message, clock):
    monkeypatch.setattr(sweeper_mod, "BATCH", 1)  # one row per pass stands for a full batch
    clock.now = clock.now.replace(hour=23)
    user(timezone="UTC")
    user("u-2", timezone="UTC")
    waiting = send(category="invitation", urgency="normal", body="join")     # SMS deferred to 08:00
    settled = send(category="otp", urgency="high", body="123456", user_id="u-2")  # SMS sent now
    drain()
    for _ in range(5):
        clock.advance(minutes=15)
        state.dispatcher.sweep_once()
    assert message(settled["id"])["status"] == "sent"
    assert attempts(message, waiting["id"], "email")[0]["status"] == "queued"  # still waiting its turn


def test_device_tokens_are_keyed_by_token(client, auth, state):
    put = lambda devices: client.put("/v1/recipients/u-9", headers=auth, json={"devices": devices})  # noqa: E731
    assert put([{"token": "tok123456789", "platform": "fcm"}]).status_code == 201
    assert put([{"token": "tok123456789", "platform": "apns"}]).status_code == 200   # platform corrected
    assert put([{"token": "dup123456789", "platform": "fcm"}] * 2).status_code == 200  # listed twice
    devices = client.get("/v1/recipients/u-9", headers=auth).get_json()["devices"]
    assert [(d["platform"], d["active"]) for d in devices] == [("fcm", True)]


def test_relisting_a_deactivated_token_reactivates_it(client, auth, state):
    from orchestrator.storage.models import Device

    client.put("/v1/recipients/u-9", headers=auth, json={"devices": [{"token": "tok123456789", "platform": "fcm"}]})
    with state.db.session() as s:
        for d in s.query(Device).all():
            d.active = False
    client.put("/v1/recipients/u-9", headers=auth, json={"devices": [{"token": "tok123456789", "platform": "fcm"}]})
    assert client.get("/v1/recipients/u-9", headers=auth).get_json()["devices"][0]["active"] is True


def test_inapp_token_validates_the_user_id(client, auth):
    r = client.post("/v1/recipients/" + "a" * 300 + "/inapp-token", headers=auth)
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "user_id"
