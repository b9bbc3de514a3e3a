"""SES events via SNS: real RSA signatures from a test CA, the allow-list, and the event table."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from providers.base import AttemptStatus, Engagement, SignatureError
from providers.ses_events import (
    SES_EVENT_RULES,
    SubscriptionConfirmation,
    cert_url_allowed,
    parse_ses_notification,
    verify_sns_message,
)
from tests.fakes.event_signers import DEFAULT_SNS_CERT_URL
from tests.fakes.event_signers import sns_signed as signed
from tests.fakes.smtp_fake import shared_ca

TEST_HOSTS = ("sns.*.amazonaws.com",)
CERT_URL = DEFAULT_SNS_CERT_URL
TOPIC = "arn:aws:sns:test-region:123456789012:ses-events"
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
SNS_TIMESTAMP = "2026-11-22T11:59:30.123Z"


class RecordingFetcher:
    """Stands in for the orchestrator's HTTPS fetcher: serves known URLs, records every call."""

    def __init__(self, certs: dict[str, bytes]) -> None:
        self.certs = certs
        self.calls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.calls.append(url)
        return self.certs[url]


@pytest.fixture(scope="module")
def signer():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert, _ = shared_ca().issue(
        "sns.amazonaws.com", key=key, server_auth=False,
        not_before=min(now, NOW) - dt.timedelta(days=1), not_after=max(now, NOW) + dt.timedelta(days=30),
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture()
def fetcher(signer):
    return RecordingFetcher({CERT_URL: signer[1]})




def notification(event: dict | str, **extra) -> dict:
    msg = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": TOPIC,
        "Message": event if isinstance(event, str) else json.dumps(event),
        "Timestamp": SNS_TIMESTAMP,
        "UnsubscribeURL": "https://sns.test-region.amazonaws.com/?Action=Unsubscribe",
    }
    msg.update(extra)
    return msg


def confirmation(kind: str = "SubscriptionConfirmation") -> dict:
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb7",
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.",
        "SubscribeURL": "https://sns.test-region.amazonaws.com/?Action=ConfirmSubscription&Token=2336",
        "Timestamp": SNS_TIMESTAMP,
    }


def verify(msg: dict, fetcher, **kwargs) -> None:
    kwargs.setdefault("allowed_cert_hosts", TEST_HOSTS)
    kwargs.setdefault("now", NOW.timestamp())
    verify_sns_message(msg, fetch_certificate=fetcher, **kwargs)


DELIVERY = {"eventType": "Delivery", "mail": {"messageId": "ses-1"}, "delivery": {}}


# -- signatures -----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Amazon SES Email Event Notification"])
def test_genuine_notification_is_accepted(signer, fetcher, version, subject):
    msg = notification(DELIVERY, **({"Subject": subject} if subject else {}))
    verify(signed(signer[0], msg, version), fetcher)
    assert fetcher.calls == [CERT_URL]


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_genuine_confirmation_is_accepted(signer, fetcher, version, kind):
    verify(signed(signer[0], confirmation(kind), version), fetcher)


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", json.dumps({"eventType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": {}})),
        ("MessageId", "another-id"),
        ("TopicArn", "arn:aws:sns:test-region:123456789012:other"),
        ("Timestamp", "2026-11-22T11:59:31.123Z"),
        ("Subject", "added after signing"),
    ],
)
def test_tampered_field_is_rejected(signer, fetcher, version, field, value):
    msg = signed(signer[0], notification(DELIVERY), version)
    msg[field] = value
    with pytest.raises(SignatureError):
        verify(msg, fetcher)


def test_tampered_subscribe_url_is_rejected(signer, fetcher):
    msg = signed(signer[0], confirmation(), "2")
    msg["SubscribeURL"] = "https://attacker.example/confirm"
    with pytest.raises(SignatureError):
        verify(msg, fetcher)


def test_signature_version_swap_is_rejected(signer, fetcher):
    msg = signed(signer[0], notification(DELIVERY), "1")
    msg["SignatureVersion"] = "2"
    with pytest.raises(SignatureError):
        verify(msg, fetcher)


def test_certificate_with_another_key_is_rejected(signer):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    other_cert, _ = shared_ca().issue(
        "sns.amazonaws.com", key=other_key, server_auth=False,
        not_before=min(now, NOW) - dt.timedelta(days=1), not_after=max(now, NOW) + dt.timedelta(days=1),
    )
    fetcher = RecordingFetcher({CERT_URL: other_cert.public_bytes(serialization.Encoding.PEM)})
    with pytest.raises(SignatureError, match="does not match"):
        verify(signed(signer[0], notification(DELIVERY)), fetcher)


def test_expired_certificate_is_rejected(signer):
    cert, _ = shared_ca().issue(
        "sns.amazonaws.com", key=signer[0], server_auth=False,
        not_before=NOW - dt.timedelta(days=30), not_after=NOW - dt.timedelta(days=1),
    )
    fetcher = RecordingFetcher({CERT_URL: cert.public_bytes(serialization.Encoding.PEM)})
    with pytest.raises(SignatureError, match="not valid at this time"):
        verify(signed(signer[0], notification(DELIVERY)), fetcher)


def test_fetched_garbage_is_rejected(signer):
    fetcher = RecordingFetcher({CERT_URL: b"<html>not a certificate</html>"})
    with pytest.raises(SignatureError, match="PEM"):
        verify(signed(signer[0], notification(DELIVERY)), fetcher)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/SimpleNotificationService-1.pem",
        "https://sns.test-region.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://sns.a.b.amazonaws.com/SimpleNotificationService-1.pem",        # "*" is one label
        "https://s3.test-region.amazonaws.com/SimpleNotificationService-1.pem",
        "http://sns.test-region.amazonaws.com/SimpleNotificationService-1.pem",  # not https
        "https://sns.test-region.amazonaws.com@evil.example/x.pem",             # userinfo trick
        "https://sns.test-region.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.test-region.amazonaws.com/not-a-cert.txt",
        "file:///etc/ssl/cert.pem",
        "",
    ],
)
def test_disallowed_cert_url_is_rejected_without_fetching(signer, fetcher, url):
    msg = signed(signer[0], dict(notification(DELIVERY), SigningCertURL=url))
    with pytest.raises(SignatureError, match="SigningCertURL"):
        verify(msg, fetcher)
    assert fetcher.calls == []


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda m: m.update(SignatureVersion="3"), "SignatureVersion"),
        (lambda m: m.pop("SignatureVersion"), "SignatureVersion"),
        (lambda m: m.update(Type="Bogus"), "type"),
        (lambda m: m.pop("MessageId"), "MessageId"),
        (lambda m: m.update(Signature="%%%"), "base64"),
        (lambda m: m.update(Timestamp="yesterday"), "Timestamp"),
    ],
)
def test_malformed_messages_are_rejected_without_fetching(signer, fetcher, mutate, match):
    msg = signed(signer[0], notification(DELIVERY))
    mutate(msg)
    with pytest.raises(SignatureError, match=match):
        verify(msg, fetcher)
    assert fetcher.calls == []


@pytest.mark.parametrize("offset", [dt.timedelta(hours=1, seconds=1), dt.timedelta(minutes=-10)])
def test_stale_or_future_message_is_rejected(signer, fetcher, offset):
    msg = signed(signer[0], notification(DELIVERY))
    with pytest.raises(SignatureError, match="too old"):
        verify(msg, fetcher, now=(dt.datetime.fromisoformat(SNS_TIMESTAMP) + offset).timestamp())
    assert fetcher.calls == []


def test_topic_allow_list(signer, fetcher):
    msg = signed(signer[0], notification(DELIVERY))
    verify(msg, fetcher, allowed_topic_arns={TOPIC})
    with pytest.raises(SignatureError, match="TopicArn"):
        verify(msg, RecordingFetcher({}), allowed_topic_arns={"arn:aws:sns:test-region:1:other"})


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd2301463.pem", True),
        ("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem", True),
        ("https://SNS.EU-WEST-1.AMAZONAWS.COM/SimpleNotificationService-1.pem", True),
        ("https://sns.test-region.amazonaws.com:443/SimpleNotificationService-1.pem", True),
        ("https://sns.us-east-1.amazonaws.com.attacker.io/x.pem", False),
        ("https://snsXus-east-1.amazonaws.com/x.pem", False),
        ("https://sns.us-east-1.amazonaws.com:notaport/x.pem", False),
    ],
)
def test_default_cert_host_patterns(url, allowed):
    assert cert_url_allowed(url) is allowed


# -- parsing --------------------------------------------------------------------------------


OUR_HEADERS = [
    {"name": "From", "value": "Orchestrator <notify@example.org>"},
    {"name": "To", "value": "jane@example.com"},
    {"name": "Message-ID", "value": "<01JATT0000000000000000000B.01JMSG0000000000000000000A@example.org>"},
    {"name": "X-Orchestrator-Message-Id", "value": "01JMSG0000000000000000000A"},
]


def ses_event(event_type: str, detail: dict | None = None, *, key: str | None = None) -> dict:
    event = {
        "eventType": event_type,
        "mail": {
            "timestamp": "2026-11-22T11:58:00.000Z",
            "source": "notify@example.org",
            "messageId": "010f01936e1f5d4a-3b3ad6e1-0000-4c8e-9d36-000000000000-000000",
            "destination": ["jane@example.com"],
            "headersTruncated": False,
            "headers": OUR_HEADERS,
            "commonHeaders": {"messageId": OUR_HEADERS[2]["value"], "subject": "Your receipt"},
        },
    }
    if detail is not None:
        event[key or event_type[0].lower() + event_type[1:]] = detail
    return event


@pytest.mark.parametrize(
    ("event", "status", "engagement", "error_code"),
    [
        (ses_event("Send", {}), AttemptStatus.SENT, None, None),
        (ses_event("Delivery", {"timestamp": "2026-11-22T11:59:00.000Z", "smtpResponse": "250 ok"}),
         AttemptStatus.DELIVERED, None, None),
        (ses_event("Bounce", {"bounceType": "Permanent", "bounceSubType": "General"}),
         AttemptStatus.BOUNCED, None, "hard_bounce"),
        (ses_event("Bounce", {"bounceType": "Transient", "bounceSubType": "MailboxFull"}),
         None, None, "soft_bounce"),
        (ses_event("Bounce", {"bounceType": "Undetermined"}), None, None, "soft_bounce"),
        (ses_event("Complaint", {"complaintFeedbackType": "abuse"}), None, None, "complaint"),
        (ses_event("Reject", {"reason": "Bad content"}), AttemptStatus.FAILED, None, "rejected"),
        (ses_event("Rendering Failure", {"errorMessage": "x"}, key="failure"),
         AttemptStatus.FAILED, None, "rendering_failure"),
        (ses_event("DeliveryDelay", {"delayType": "MailboxFull"}), None, None, "delivery_delay"),
        (ses_event("Open", {"userAgent": "Mozilla"}), None, Engagement.READ, None),
        (ses_event("Click", {"link": "https://example.org"}), None, Engagement.CLICKED, None),
        (ses_event("Subscription", {}), None, None, "subscription"),
        (ses_event("SomethingNew", {}), None, None, None),
        # Identity notifications (the older feed) say notificationType instead of eventType.
        ({"notificationType": "Bounce", "bounce": {"bounceType": "Permanent"}, "mail": {"messageId": "m"}},
         AttemptStatus.BOUNCED, None, "hard_bounce"),
        ({"notificationType": "Delivery", "delivery": {}, "mail": {"messageId": "m"}},
         AttemptStatus.DELIVERED, None, None),
    ],
)
def test_event_table(event, status, engagement, error_code):
    [receipt] = parse_ses_notification(notification(event))
    assert (receipt.status, receipt.engagement, receipt.error_code) == (status, engagement, error_code)


def test_every_table_entry_is_exercised():
    assert set(SES_EVENT_RULES) == {
        "Send", "Delivery", "Bounce:Permanent", "Bounce:Transient", "Bounce:Undetermined", "Complaint",
        "Reject", "Rendering Failure", "DeliveryDelay", "Open", "Click", "Subscription",
    }


def test_receipt_fields():
    event = ses_event("Delivery", {"timestamp": "2026-11-22T11:59:00.000Z"})
    msg = notification(event)
    [receipt] = parse_ses_notification(msg)
    assert receipt.provider == "ses"
    # Our Message-ID (from the original headers), as SMTPEmailProvider returned it on send.
    assert receipt.provider_message_id == "01JATT0000000000000000000B.01JMSG0000000000000000000A@example.org"
    assert receipt.event_id == msg["MessageId"]
    assert receipt.occurred_at == dt.datetime(2026, 11, 22, 11, 59, tzinfo=dt.UTC)
    assert receipt.message_id == "01JMSG0000000000000000000A"
    assert receipt.raw == msg


@pytest.mark.parametrize(
    ("headers", "common", "domain", "expected"),
    [
        (OUR_HEADERS[:3], {}, None, "01JMSG0000000000000000000A"),              # from Message-ID
        ([], {"messageId": OUR_HEADERS[2]["value"]}, None, "01JMSG0000000000000000000A"),
        (OUR_HEADERS[:3], {}, "other.example", None),                            # foreign domain
        ([{"name": "message-id", "value": "<CAF+x@mail.gmail.com>"}], {}, None, None),
        ([], {}, None, None),
    ],
)
def test_message_id_recovery(headers, common, domain, expected):
    event = {"eventType": "Send", "send": {}, "mail": {"messageId": "m", "headers": headers,
                                                        "commonHeaders": common}}
    [receipt] = parse_ses_notification(notification(event), message_id_domain=domain)
    assert receipt.message_id == expected


def test_without_our_headers_the_ses_message_id_is_used():
    event = {"eventType": "Delivery", "delivery": {}, "mail": {"messageId": "ses-42", "headers": []}}
    [receipt] = parse_ses_notification(notification(event))
    assert (receipt.provider_message_id, receipt.message_id) == ("ses-42", None)


def test_occurred_at_falls_back_to_mail_then_sns_timestamp():
    [from_mail] = parse_ses_notification(notification(ses_event("Send", {})))
    assert from_mail.occurred_at == dt.datetime(2026, 11, 22, 11, 58, tzinfo=dt.UTC)
    [from_sns] = parse_ses_notification(notification({"eventType": "Send", "mail": {}}))
    assert from_sns.occurred_at == dt.datetime.fromisoformat(SNS_TIMESTAMP)


def test_subscription_confirmation_is_returned_for_the_orchestrator(signer, fetcher):
    msg = signed(signer[0], confirmation(), "2")
    verify(msg, fetcher)
    result = parse_ses_notification(msg)
    assert isinstance(result, SubscriptionConfirmation)
    assert result.subscribe_url == msg["SubscribeURL"]
    assert (result.topic_arn, result.token, result.message_id) == (TOPIC, msg["Token"], msg["MessageId"])


def test_unsubscribe_confirmation_and_setup_notice_yield_nothing():
    assert parse_ses_notification(confirmation("UnsubscribeConfirmation")) == []
    notice = notification("Successfully validated SNS topic for Amazon SES event publishing.")
    assert parse_ses_notification(notice) == []
    assert parse_ses_notification(notification({"unrelated": True})) == []


def test_unknown_type_is_value_error():
    with pytest.raises(ValueError):
        parse_ses_notification({"Type": "Bogus"})


def test_verified_then_parsed_end_to_end(signer, fetcher):
    msg = signed(signer[0], notification(ses_event("Bounce", {"bounceType": "Permanent"})), "2")
    verify(msg, fetcher, allowed_topic_arns=[TOPIC])
    [receipt] = parse_ses_notification(msg)
    assert receipt.status == AttemptStatus.BOUNCED and receipt.error_code == "hard_bounce"
