"""Email receipts end to end: a message goes by email through a real SMTP server (aiosmtpd),
then genuinely signed SendGrid events and SNS-signed SES events about it come back through
the webhooks and move the attempt, the message and the recipient."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from orchestrator.storage.models import Recipient
from providers.sendgrid_events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.dispatch.conftest import Recorder
from tests.fakes.event_signers import sendgrid_sign
from tests.fakes.event_signers import sns_signed as sign_sns

TOPIC = "arn:aws:sns:test-region:123456789012:ses-events"
OTHER_TOPIC = "arn:aws:sns:test-region:999999999999:not-ours"
CERT_URL = "https://sns.test-region.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"
SUBSCRIBE_URL = "https://sns.test-region.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=2336"
SENDER = "Orchestrator <app@mail.example.org>"


@pytest.fixture
def fetcher(sns_signer):
    return Recorder({CERT_URL: sns_signer[1]})


@pytest.fixture
def confirmer():
    return Recorder()


@pytest.fixture
def app(make_app, smtp, sendgrid_public_key, fetcher, confirmer):
    app = make_app(SMTP_HOST=smtp.host, SMTP_PORT=smtp.port, SMTP_FROM=SENDER, SMTP_STARTTLS="false",
                   SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public_key, SES_SNS_TOPIC_ARNS=f" {TOPIC} , ")
    app.config["SNS_CERT_FETCHER"] = fetcher
    app.config["SNS_SUBSCRIBE_CONFIRMER"] = confirmer
    return app


# -- helpers --------------------------------------------------------------------------------


@pytest.fixture
def emailed(user, send, drain, message, smtp):
    """Sends a transactional message (email only) through the SMTP server; returns
    (message id, the email attempt as the API shows it)."""

    def run():
        user()
        sent = send(category="transactional", urgency="normal")
        assert [s["channel"] for s in sent["route"]["steps"]] == ["email"]
        drain()
        [attempt] = message(sent["id"])["attempts"]
        assert attempt["status"] == "sent" and not attempt["sandboxed"]
        # The Message-ID we put on the wire is the provider id the receipts will quote.
        assert smtp.received[-1].message["Message-ID"].strip("<>") == attempt["provider_message_id"]
        assert attempt["provider_message_id"].startswith(f"{attempt['id']}.{sent['id']}@")
        return sent["id"], attempt

    return run


def sg_event(kind: str, provider_message_id: str, at: dt.datetime, event_id: str | None = None,
             **extra) -> dict:
    event = {"email": "ada@example.com", "timestamp": int(at.timestamp()), "event": kind,
             "sg_event_id": event_id or f"evt-{kind}", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0"}
    if kind in ("delivered", "bounce", "processed", "dropped", "deferred"):
        event["smtp-id"] = f"<{provider_message_id}>"             # on delivery events only
    else:
        event["orchestrator_provider_message_id"] = provider_message_id   # custom arg, every event
    event.update(extra)
    return event


def sg_post(client, key, events: list[dict] | bytes, *, signed_at: dt.datetime, tamper=None):
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    ts = str(int(signed_at.timestamp()))
    signature = sendgrid_sign(key, body, ts)
    if tamper:
        body = tamper(body)
    return client.post("/webhooks/sendgrid", data=body, content_type="application/json",
                       headers={SIGNATURE_HEADER: signature, TIMESTAMP_HEADER: ts})



def sns_signed(key, msg: dict) -> dict:
    return sign_sns(key, msg, version="2", cert_url=CERT_URL)


def _sns_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def ses_notification(provider_message_id: str, at: dt.datetime, event_type: str = "Delivery",
                     detail: dict | None = None, sns_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                     topic: str = TOPIC) -> dict:
    key = {"Delivery": "delivery", "Bounce": "bounce", "Complaint": "complaint", "Open": "open"}[event_type]
    event = {
        "eventType": event_type,
        "mail": {
            "timestamp": _sns_time(at), "messageId": "0100018c-ses-own-id", "source": "app@mail.example.org",
            "destination": ["ada@example.com"],
            "headers": [{"name": "Message-ID", "value": f"<{provider_message_id}>"}],
            "commonHeaders": {"messageId": f"<{provider_message_id}>"},
        },
        key: {"timestamp": _sns_time(at), **(detail or {})},
    }
    return {"Type": "Notification", "MessageId": sns_id, "TopicArn": topic, "Message": json.dumps(event),
            "Timestamp": _sns_time(at), "Subject": "Amazon SES Email Event Notification"}


def ses_post(client, msg: dict):
    return client.post("/webhooks/ses", data=json.dumps(msg), content_type="text/plain; charset=UTF-8")


def recipient(state, user_id="u-1") -> Recipient:
    with state.db.session() as s:
        row = s.get(Recipient, user_id)
        s.expunge(row)
        return row


# -- SendGrid -------------------------------------------------------------------------------


def test_sendgrid_delivered_then_open_marks_the_message_read(client, emailed, message, clock, sendgrid_key):
    message_id, attempt = emailed()
    pmid = attempt["provider_message_id"]
    r = sg_post(client, sendgrid_key, [sg_event("delivered", pmid, clock.now)], signed_at=clock.now)
    assert r.status_code == 204, r.get_json()
    msg = message(message_id)
    assert msg["attempts"][0]["status"] == "delivered" and msg["status"] == "delivered"
    clock.advance(minutes=3)
    r = sg_post(client, sendgrid_key, [sg_event("open", pmid, clock.now, useragent="Mozilla")],
                signed_at=clock.now)
    assert r.status_code == 204
    msg = message(message_id)
    [a] = msg["attempts"]
    assert a["status"] == "delivered" and a["read_at"] == clock.now.isoformat()
    assert msg["status"] == "read"
    assert [(x["source"], x["outcome"]) for x in msg["receipts"]] == [("sendgrid", "applied")] * 2


def test_sendgrid_tampered_body_is_rejected_and_nothing_recorded(client, emailed, message, clock,
                                                                 sendgrid_key):
    message_id, attempt = emailed()
    events = [sg_event("delivered", attempt["provider_message_id"], clock.now)]
    r = sg_post(client, sendgrid_key, events, signed_at=clock.now,
                tamper=lambda b: b.replace(b"delivered", b"bounce"))
    assert r.status_code == 403
    assert r.get_json()["error"]["code"] == "bad_signature"
    assert r.get_json()["error"]["field"] == SIGNATURE_HEADER
    no_headers = client.post("/webhooks/sendgrid", data=json.dumps(events), content_type="application/json")
    assert no_headers.status_code == 403
    msg = message(message_id)
    assert msg["receipts"] == [] and msg["attempts"][0]["status"] == "sent"


def test_sendgrid_stale_timestamp_is_rejected(client, emailed, message, clock, sendgrid_key):
    message_id, attempt = emailed()
    events = [sg_event("delivered", attempt["provider_message_id"], clock.now)]
    r = sg_post(client, sendgrid_key, events, signed_at=clock.now - dt.timedelta(minutes=10))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "bad_signature"
    assert message(message_id)["receipts"] == []


def test_sendgrid_duplicate_event_is_recorded_as_duplicate(client, emailed, message, clock, sendgrid_key):
    message_id, attempt = emailed()
    events = [sg_event("delivered", attempt["provider_message_id"], clock.now)]
    for _ in range(2):
        assert sg_post(client, sendgrid_key, events, signed_at=clock.now).status_code == 204
    msg = message(message_id)
    assert [x["outcome"] for x in msg["receipts"]] == ["applied", "duplicate"]
    assert msg["attempts"][0]["status"] == "delivered"


def test_sendgrid_bounce_invalidates_the_address(client, emailed, message, clock, sendgrid_key, state):
    message_id, attempt = emailed()
    bounce = sg_event("bounce", attempt["provider_message_id"], clock.now, type="bounce", status="5.1.1")
    assert sg_post(client, sendgrid_key, [bounce], signed_at=clock.now).status_code == 204
    msg = message(message_id)
    assert msg["attempts"][0]["status"] == "bounced" and msg["status"] == "failed"
    row = recipient(state)
    assert row.email_valid is False
    assert row.consents["email"] is True   # a dead address is not a withdrawn consent


def test_sendgrid_blocked_is_not_a_dead_address(client, emailed, clock, sendgrid_key, state):
    _, attempt = emailed()
    blocked = sg_event("bounce", attempt["provider_message_id"], clock.now, type="blocked")
    assert sg_post(client, sendgrid_key, [blocked], signed_at=clock.now).status_code == 204
    assert recipient(state).email_valid is True


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe", "group_unsubscribe"])
def test_sendgrid_spam_report_or_unsubscribe_withdraws_marketing_consent_only(client, emailed, clock, sendgrid_key,
                                                                              state, kind):
    _, attempt = emailed()
    extra = {"asm_group_id": 42} if kind == "group_unsubscribe" else {}
    event = sg_event(kind, attempt["provider_message_id"], clock.now, **extra)
    assert sg_post(client, sendgrid_key, [event], signed_at=clock.now).status_code == 204
    row = recipient(state)
    assert row.consents["marketing"] is False
    assert row.consents["email"] is True and row.consents["sms"] is True
    assert row.email_valid is True


@pytest.mark.parametrize("kind", ["spamreport", "unsubscribe"])
def test_after_an_unsubscribe_security_and_legal_email_still_go_out(client, emailed, clock, sendgrid_key, send,
                                                                    kind):
    """Issue #11 defect 2: an unsubscribe used to turn off all email."""
    _, attempt = emailed()
    event = sg_event(kind, attempt["provider_message_id"], clock.now)
    assert sg_post(client, sendgrid_key, [event], signed_at=clock.now).status_code == 204
    alert = send(category="security_alert", body="New sign-in from Chrome on Windows.")
    assert "email" in [s["channel"] for s in alert["route"]["steps"]]
    legal = send(category="legal_notice", body="Our terms change on 1 April.", urgency="normal")
    assert [s["channel"] for s in legal["route"]["steps"]] == ["email"]
    promo = send(category="promotion", body="20% off", urgency="normal")
    assert promo["status"] == "suppressed"


def test_sendgrid_signed_but_malformed_body_is_400(client, clock, sendgrid_key):
    r = sg_post(client, sendgrid_key, b'{"event": "open"', signed_at=clock.now)
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"


def test_sendgrid_and_ses_answer_404_when_not_configured(make_app):
    client = make_app().test_client()
    for path in ("/webhooks/sendgrid", "/webhooks/ses"):
        r = client.post(path, data=b"[]", content_type="application/json")
        assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"


# -- Amazon SES via SNS ---------------------------------------------------------------------


def test_ses_signed_delivery_marks_the_attempt_delivered(client, emailed, message, clock, sns_signer,
                                                         fetcher):
    message_id, attempt = emailed()
    msg = sns_signed(sns_signer[0], ses_notification(attempt["provider_message_id"], clock.now))
    r = ses_post(client, msg)
    assert r.status_code == 204, r.get_json()
    assert fetcher.calls == [CERT_URL]
    view = message(message_id)
    assert view["attempts"][0]["status"] == "delivered" and view["status"] == "delivered"
    assert [(x["source"], x["outcome"]) for x in view["receipts"]] == [("ses", "applied")]


def test_ses_bad_cert_host_is_rejected_without_fetching(client, emailed, message, clock, sns_signer, fetcher):
    message_id, attempt = emailed()
    evil = "https://sns.test-region.amazonaws.com.evil.example/cert.pem"
    notification = {**ses_notification(attempt["provider_message_id"], clock.now), "SigningCertURL": evil}
    r = ses_post(client, sns_signed(sns_signer[0], notification))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "bad_signature"
    assert fetcher.calls == []
    assert message(message_id)["receipts"] == []


def test_ses_tampered_notification_is_rejected(client, emailed, message, clock, sns_signer):
    message_id, attempt = emailed()
    msg = sns_signed(sns_signer[0], ses_notification(attempt["provider_message_id"], clock.now))
    msg["Message"] = msg["Message"].replace('"Delivery"', '"Bounce"')
    assert ses_post(client, msg).status_code == 403
    assert message(message_id)["receipts"] == []


def test_ses_permanent_bounce_and_complaint_update_the_recipient(client, emailed, message, clock, sns_signer,
                                                                 state):
    message_id, attempt = emailed()
    pmid = attempt["provider_message_id"]
    bounce = ses_notification(pmid, clock.now, "Bounce", {"bounceType": "Permanent"}, sns_id="sns-1")
    assert ses_post(client, sns_signed(sns_signer[0], bounce)).status_code == 204
    assert message(message_id)["attempts"][0]["status"] == "bounced"
    assert recipient(state).email_valid is False
    complaint = ses_notification(pmid, clock.now, "Complaint", {"complaintFeedbackType": "abuse"},
                                 sns_id="sns-2")
    assert ses_post(client, sns_signed(sns_signer[0], complaint)).status_code == 204
    row = recipient(state)
    assert row.consents["marketing"] is False and row.consents["email"] is True


def test_ses_subscription_for_our_topic_is_confirmed(client, clock, sns_signer, confirmer):
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9", "Token": "2336412f37fb",
        "TopicArn": TOPIC, "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": SUBSCRIBE_URL, "Timestamp": _sns_time(clock.now),
    }
    r = ses_post(client, sns_signed(sns_signer[0], confirmation))
    assert r.status_code == 204, r.get_json()
    assert confirmer.calls == [SUBSCRIBE_URL]


def test_ses_subscription_for_an_unknown_topic_is_refused(client, clock, sns_signer, confirmer, fetcher):
    confirmation = {
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9", "Token": "2336412f37fb",
        "TopicArn": OTHER_TOPIC, "Message": "You have chosen to subscribe.",
        "SubscribeURL": SUBSCRIBE_URL, "Timestamp": _sns_time(clock.now),
    }
    r = ses_post(client, sns_signed(sns_signer[0], confirmation))
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "bad_signature"
    assert confirmer.calls == [] and fetcher.calls == []


def test_ses_body_that_is_not_json_is_400(client):
    r = client.post("/webhooks/ses", data=b"not json", content_type="text/plain")
    assert r.status_code == 400 and r.get_json()["error"]["code"] == "invalid_json"


# -- hostile input (issue #12 §1) ------------------------------------------------------------


def test_ses_deeply_nested_body_is_400_without_credentials(client, fetcher):
    r = client.post("/webhooks/ses", data="[" * 100_000, content_type="text/plain")
    err = r.get_json()["error"]
    assert r.status_code == 400 and err["code"] == "nesting_too_deep"
    assert err["field"] == "0.0" and err["message"].startswith("0.0: nested deeper than 32")
    assert fetcher.calls == []


def test_sendgrid_signed_deeply_nested_body_is_400(client, clock, sendgrid_key):
    r = sg_post(client, sendgrid_key, b"[" * 100_000 + b"]" * 100_000, signed_at=clock.now)
    assert r.status_code == 400 and r.get_json()["error"]["field"] == "body"
    assert "nested deeper" in r.get_json()["error"]["message"]


def test_sendgrid_batch_with_malformed_events_records_the_good_ones(client, emailed, message, clock, sendgrid_key,
                                                                     state):
    """Issue #19 §2: the malformed events of a batch are refused (422 naming each) and kept
    as parked `rejected` receipts; the good ones are recorded all the same, and SendGrid's
    redelivery of the batch (it retries a non-2xx for 24 hours) changes nothing."""
    from orchestrator.storage.models import ReceiptEvent

    message_id, attempt = emailed()
    pmid = attempt["provider_message_id"]
    batch = [sg_event("delivered", pmid, clock.now, event_id="evt-d"),
             sg_event("open", pmid, clock.now, event_id="evt-bad-1", timestamp=1e300),
             sg_event("open", pmid, clock.now, event_id="evt-o"),
             sg_event("click", pmid, clock.now, event_id="evt-bad-2", email="ada\ud800@example.com")]
    for _delivery in range(2):  # the first delivery, then SendGrid's retry
        r = sg_post(client, sendgrid_key, batch, signed_at=clock.now)
        assert r.status_code == 422, r.get_data(as_text=True)
        error = r.get_json()["error"]
        assert (error["field"], error["code"]) == ("1.timestamp", "date_out_of_range")
        assert [(d["field"], d["code"]) for d in error["details"]] == [
            ("1.timestamp", "date_out_of_range"), ("3.email", "invalid_character")]
    view = message(message_id)
    assert view["status"] == "read" and view["attempts"][0]["status"] == "delivered"
    assert [x["outcome"] for x in view["receipts"]] == ["applied", "applied", "duplicate", "duplicate"]
    with state.db.session() as s:
        kept = s.execute(select(ReceiptEvent.outcome, ReceiptEvent.raw).where(ReceiptEvent.message_id.is_(None))).all()
    assert [(o, raw["rejected"]["field"]) for o, raw in kept] == [("rejected", "1.timestamp"), ("rejected", "3.email")]
    assert kept[1].raw["event"]["email"] == "ada\ufffd@example.com"   # a storable copy


def test_ses_forgery_with_our_topic_and_a_made_up_cert_path_is_not_fetched(client, clock, sns_signer, fetcher):
    msg = sns_signed(sns_signer[0], ses_notification("x@y", clock.now))
    for url in ("https://sns.any-label.amazonaws.com/some/path.pem",
                "https://sns.any-label.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem?x=1"):
        r = ses_post(client, {**msg, "SigningCertURL": url})
        assert r.status_code == 403, r.get_json()
    r = ses_post(client, {**msg, "Signature": "AAAA"})  # base64, but not an RSA signature's length
    assert r.status_code == 403
    assert fetcher.calls == []


def test_ses_certificate_fetch_failure_is_503(app, client, clock, sns_signer):
    import httpx

    def failing(url: str) -> bytes:
        raise httpx.ConnectError("no route")

    app.config["SNS_CERT_FETCHER"] = failing
    r = ses_post(client, sns_signed(sns_signer[0], ses_notification("x@y", clock.now)))
    assert r.status_code == 503, r.get_json()
    assert r.get_json()["error"]["field"] == "SigningCertURL"


def test_default_certificate_cache_is_bounded(monkeypatch):
    from orchestrator.api import sns_certificates

    monkeypatch.setattr(sns_certificates, "_cache", type(sns_certificates._cache)())
    fetched: list[str] = []

    def download(url: str) -> bytes:   # the network edge, not our logic
        fetched.append(url)
        return b"pem"

    monkeypatch.setattr(sns_certificates, "_download", download)
    urls = [f"https://sns.r{n}.amazonaws.com/SimpleNotificationService-{n:016x}.pem"
            for n in range(sns_certificates.MAX_CACHED + 10)]
    for url in urls:
        sns_certificates.fetch_certificate(url)
    assert len(sns_certificates.cached_urls()) == sns_certificates.MAX_CACHED
    sns_certificates.fetch_certificate(urls[-1])
    assert len(fetched) == len(urls)   # the newest is served from the cache
