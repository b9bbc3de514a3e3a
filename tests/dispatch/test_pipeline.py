"""Route plan → deliveries → receipts, end to end through the HTTP API, the task body and
the Twilio wire fake (SMS), with email and push in sandbox mode."""

from __future__ import annotations

from providers.base import AttemptStatus


def by_channel(msg, channel):
    return [a for a in msg["attempts"] if a["channel"] == channel]


def test_otp_goes_by_sms_and_a_signed_receipt_marks_it_delivered(client, user, send, drain, message, twilio):
    user()
    sent = send()
    assert [s["channel"] for s in sent["route"]["steps"]][0] == "sms"
    drain()
    assert len(twilio.messages) == 1
    received = twilio.requests[-1].form
    assert received["To"] == "+447400123456" and received["StatusCallback"] == "http://localhost/webhooks/twilio"
    sid = next(iter(twilio.messages))
    msg = message(sent["id"])
    sms = by_channel(msg, "sms")[0]
    assert sms["status"] == "sent" and sms["provider_message_id"] == sid and not sms["sandboxed"]
    cb = twilio.status_callback_for(sid, "delivered")
    r = client.post("/webhooks/twilio", data=cb.form, headers=cb.headers)
    assert r.status_code == 204
    msg = message(sent["id"])
    assert by_channel(msg, "sms")[0]["status"] == "delivered"
    assert msg["status"] == "delivered"
    # The email fallback is no longer needed once SMS delivered.
    assert {a["status"] for a in by_channel(msg, "email")} == {"cancelled"}
    assert [r["outcome"] for r in msg["receipts"]] == ["applied"]


def test_forged_twilio_callback_is_rejected(client, user, send, drain, twilio, message):
    user()
    sent = send()
    drain()
    sid = next(iter(twilio.messages))
    cb = twilio.status_callback_for(sid, "delivered")
    forged = {**cb.form, "MessageStatus": "failed"}
    r = client.post("/webhooks/twilio", data=forged, headers=cb.headers)
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "bad_signature"
    assert client.post("/webhooks/twilio", data=cb.form).status_code == 403
    assert message(sent["id"])["receipts"] == []


def test_duplicate_and_out_of_order_callbacks_never_move_status_back(client, user, send, drain, twilio, message):
    user()
    sent = send()
    drain()
    sid = next(iter(twilio.messages))
    for status in ("delivered", "sent", "delivered", "queued"):
        cb = twilio.status_callback_for(sid, status)
        assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    msg = message(sent["id"])
    assert by_channel(msg, "sms")[0]["status"] == "delivered"
    assert [r["outcome"] for r in msg["receipts"]] == ["applied", "ignored", "duplicate", "ignored"]


def test_permanent_error_falls_back_to_email_and_flags_the_number(user, send, drain, message, twilio, state):
    from orchestrator.storage.models import Recipient

    user()
    twilio.fail_next(400, 21211)  # invalid To number
    sent = send()
    drain()
    msg = message(sent["id"])
    sms, email = by_channel(msg, "sms")[0], by_channel(msg, "email")[0]
    assert sms["status"] == "failed" and sms["error"]["class"] == "permanent"
    assert email["status"] == "sent" and email["sandboxed"]
    with state.db.session() as s:
        assert s.get(Recipient, "u-1").phone_valid is False
    # The next decision no longer picks the flagged number.
    again = send()
    assert "sms" not in [s["channel"] for s in again["route"]["steps"]]


def test_transient_errors_retry_later_then_succeed(user, send, drain, message, twilio, clock):
    user()
    for _ in range(3):  # the in-task retries all fail ...
        twilio.fail_next(503)
    sent = send()
    drain()
    sms = by_channel(message(sent["id"]), "sms")[0]
    assert sms["status"] == "queued" and sms["error"]["class"] == "transient"
    clock.advance(minutes=5)   # ... and the durable retry, once due, gets through
    drain()
    sms = by_channel(message(sent["id"]), "sms")[0]
    assert sms["status"] == "sent" and sms["tries"] == 2
    assert len(twilio.messages) == 1


def test_receipt_before_send_commits_is_parked_then_applied(client, user, send, message, twilio, state):
    """Twilio can call back before our worker has committed the send; the receipt must wait."""
    from tests.conftest import due_ids
    from tests.dispatch.conftest import TOKEN
    from tests.fakes.twilio_fake import signed_callback

    user()
    sent = send()
    sid_to_come = "SM" + "a" * 32
    twilio.respond_next(201, f'{{"sid": "{sid_to_come}", "status": "queued", "error_code": null}}',
                        {"Content-Type": "application/json"})
    cb = signed_callback(TOKEN, "http://localhost/webhooks/twilio", message_sid=sid_to_come, status="delivered")
    assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    assert message(sent["id"])["receipts"] == []  # not yet attributable to the message
    for attempt_id in due_ids(state):
        state.dispatcher.deliver(attempt_id)
    msg = message(sent["id"])
    assert by_channel(msg, "sms")[0]["status"] == "delivered"
    assert [r["outcome"] for r in msg["receipts"]] == ["applied"]


def test_message_expiring_before_delivery_ends_expired(user, send, drain, message, twilio, clock):
    user()
    sent = send(expires_at=clock.now.replace(minute=1).isoformat())
    clock.advance(minutes=2)
    drain()
    msg = message(sent["id"])
    assert msg["status"] == "expired"
    assert {a["status"] for a in msg["attempts"]} == {"expired"}
    assert twilio.messages == {}


def test_a_dead_worker_lease_is_recovered_by_the_sweeper(user, send, message, state, clock, twilio):
    """A worker that claimed an attempt and died leaves it `sending` with a lease; once the
    lease runs out, the sweeper hands it to another worker."""
    from orchestrator.dispatch.deliver import claim

    user()
    sent = send()
    sms_id = by_channel(message(sent["id"]), "sms")[0]["id"]
    with state.db.session() as s:
        assert claim(s, sms_id, clock.now, 60, "worker-that-dies")
    assert state.dispatcher.deliver(sms_id) == "not_claimed"  # leased: nobody else may send
    clock.advance(seconds=61)
    state.dispatcher.sweep_once()
    assert state.dispatcher.deliver(sms_id) == "sent"
    msg = message(sent["id"])
    assert by_channel(msg, "sms")[0]["status"] == AttemptStatus.SENT
    assert len(twilio.messages) == 1


def test_social_escalates_to_push_unless_read_in_time(client, auth, user, send, drain, message, clock):
    user(devices=[{"token": "fcm-device-1", "platform": "fcm"}])
    client.post("/v1/recipients/u-1/presence", headers=auth)
    token = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()["token"]
    user_headers = {"Authorization": f"Bearer {token}"}

    fired = send(category="social", urgency="normal", body="Driver: I'm outside")
    ignored = send(category="social", urgency="normal", body="Driver: where are you?")
    modes = [(s["channel"], s["mode"]) for s in fired["route"]["steps"]]
    assert modes[0] == ("in_app", "first") and ("push", "escalate") in modes
    drain()
    inbox = client.get("/v1/inbox", headers=user_headers).get_json()
    assert inbox["unread"] == 2
    read_item = next(i for i in inbox["items"] if i["message_id"] == ignored["id"])
    r = client.post(f"/v1/inbox/{read_item['id']}/read", headers=user_headers)
    assert r.status_code == 200 and r.get_json()["outcome"] == "applied"

    clock.advance(minutes=11)
    drain()
    read_msg, unread_msg = message(ignored["id"]), message(fired["id"])
    assert by_channel(read_msg, "push")[0]["status"] == "cancelled"
    assert read_msg["status"] == "read"
    assert by_channel(unread_msg, "push")[0]["status"] == "sent"


def test_in_app_engagement_needs_the_users_own_token(client, auth, user, send, drain, make_key):
    user()
    client.post("/v1/recipients/u-1/presence", headers=auth)
    send(category="onboarding", urgency="normal", body="Take the tour")
    drain()
    assert client.get("/v1/inbox").status_code == 401
    other = client.post("/v1/recipients/u-2/inapp-token", headers=auth).get_json()["token"]
    theirs = client.get("/v1/inbox", headers={"Authorization": f"Bearer {other}"}).get_json()
    assert theirs["items"] == []


def test_metrics_count_accepted_sent_and_delivered(client, user, send, drain, twilio):
    def sample(name, **labels):
        from orchestrator.metrics import REGISTRY

        return REGISTRY.get_sample_value(name, labels) or 0.0

    user()
    before = (sample("orchestrator_messages_accepted_total", category="otp"),
              sample("orchestrator_attempts_sent_total", channel="sms", provider="twilio"),
              sample("orchestrator_attempts_delivered_total", channel="sms", provider="twilio"))
    send()
    drain()
    cb = twilio.status_callback_for(next(iter(twilio.messages)), "delivered")
    client.post("/webhooks/twilio", data=cb.form, headers=cb.headers)
    after = (sample("orchestrator_messages_accepted_total", category="otp"),
             sample("orchestrator_attempts_sent_total", channel="sms", provider="twilio"),
             sample("orchestrator_attempts_delivered_total", channel="sms", provider="twilio"))
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1]
    text = client.get("/metrics").get_data(as_text=True)
    assert "orchestrator_queue_lag_seconds_bucket" in text


def test_outage_retries_then_falls_back_then_recovers(user, send, drain, message, twilio, clock):
    """SMS down for longer than the attempt's sending window: retried durably, then the
    email fallback goes out; once the outage ends, new messages go by SMS again."""
    user()
    for _ in range(200):
        twilio.fail_next(503)
    sent = send()
    drain()
    for _ in range(12):  # keep retrying through the window (default 600 s)
        clock.advance(minutes=1)
        drain()
    msg = message(sent["id"])
    sms = by_channel(msg, "sms")[0]
    assert sms["status"] == "failed" and sms["error"]["class"] == "transient" and sms["tries"] > 2
    assert by_channel(msg, "email")[0]["status"] == "sent"
    twilio.clear_script()
    after = send(body="after the outage")
    drain()  # if the breaker is still open the new SMS waits (it is not failed) ...
    clock.advance(seconds=31)  # ... until the cooldown lets one trial through, which closes it
    drain()
    assert by_channel(message(after["id"]), "sms")[0]["status"] == "sent"


# -- issue #11 defect 5: address and consent signals from Twilio receipts ---------------------


def _recipient(state, user_id="u-1"):
    from orchestrator.storage.models import Recipient

    with state.db.session() as s:
        row = s.get(Recipient, user_id)
        s.expunge(row)
        return row


def _sms_sent_then_receipt(client, user, send, drain, message, twilio, status, error_code):
    user()
    sent = send()
    drain()
    sid = next(iter(twilio.messages))
    cb = twilio.status_callback_for(sid, status, error_code=error_code)
    assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    drain()
    return message(sent["id"])


def test_twilio_receipt_with_a_dead_number_flags_the_number(client, user, send, drain, message, twilio, state):
    for code in (30005, 30006, 21211):
        twilio.messages.clear()
        msg = _sms_sent_then_receipt(client, user, send, drain, message, twilio, "undelivered", code)
        assert by_channel(msg, "sms")[0]["status"] == "undelivered"
        assert {a["status"] for a in by_channel(msg, "email")} == {"sent"}   # fell back
        assert _recipient(state).phone_valid is False, code
        again = send()
        assert "sms" not in [s["channel"] for s in again["route"]["steps"]]
        user(phone="+44 7400 123457")   # a new number is valid again
        user(phone="+44 7400 123456")


def test_twilio_receipt_for_an_unreachable_handset_keeps_the_number(client, user, send, drain, message, twilio,
                                                                    state):
    # 30003: handset off or out of coverage. The carrier already retried; the number is fine.
    msg = _sms_sent_then_receipt(client, user, send, drain, message, twilio, "undelivered", 30003)
    assert by_channel(msg, "sms")[0]["status"] == "undelivered"
    assert _recipient(state).phone_valid is True


def test_twilio_receipt_21610_withdraws_sms_consent_not_the_number(client, user, send, drain, message, twilio,
                                                                   state):
    _sms_sent_then_receipt(client, user, send, drain, message, twilio, "failed", 21610)
    row = _recipient(state)
    assert row.consents["sms"] is False and row.phone_valid is True
    assert row.consents["email"] is True


def test_twilio_receipt_for_a_number_the_user_changed_since_keeps_the_new_one(client, user, send, drain, message,
                                                                              twilio, state):
    user()
    send()
    drain()
    user(phone="+44 7400 999999")
    sid = next(iter(twilio.messages))
    cb = twilio.status_callback_for(sid, "undelivered", error_code=30005)
    assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    assert _recipient(state).phone_valid is True


# -- issue #11 defect 6: one SMS text, counted and sent --------------------------------------


def test_segment_facts_count_exactly_the_text_twilio_is_sent(user, send, drain, message, twilio):
    from policies.segments import count_segments

    user()
    # 158 GSM-7 characters of body fit one segment alone; title + newline + body need two.
    body = "x" * 158
    sent = send(body=body)
    drain()
    wire = twilio.requests[-1].form["Body"]
    assert wire == f"Hi\n{body}"
    facts = message(sent["id"])["decision"]["derived_facts"]
    assert facts["sms_segments"] == count_segments(wire).segments == 2
