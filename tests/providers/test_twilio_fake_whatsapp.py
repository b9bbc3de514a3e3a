"""The Twilio fake's WhatsApp behaviour, driven by Twilio's own SDK (the wire protocol the
WhatsApp provider uses): templates by ContentSid start a conversation, free-form text only
within 24 hours of the user's last message (else the message fails later with 63016), a
number not on WhatsApp fails with 63003, a mixed SMS/WhatsApp pair is refused at once."""

from __future__ import annotations

import json
import time

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from tests.fakes.twilio_fake import TwilioFake

ACCOUNT_SID, AUTH_TOKEN = "AC" + "1" * 32, "secret-token"
SENDER, USER = "whatsapp:+15005550001", "whatsapp:+447700900123"
TEMPLATE = "HX" + "a" * 32


@pytest.fixture
def fake():
    with TwilioFake(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def messages(fake):
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=TwilioHttpClient(timeout=5))
    client.api.base_url = fake.base_url  # the SDK's one host, pointed at the fake
    return client.api.v2010.accounts(ACCOUNT_SID).messages


def _stored(fake, sid):
    return fake.messages[sid]


def test_a_template_starts_a_conversation(fake, messages):
    sent = messages.create(to=USER, from_=SENDER, content_sid=TEMPLATE,
                           content_variables=json.dumps({"1": "Ada"}), status_callback="http://x/cb")
    assert sent.status == "queued"
    assert _stored(fake, sent.sid)["_fails_with"] is None
    callback = fake.status_callback_for(sent.sid, "read")
    assert callback.form["MessageStatus"] == "read" and callback.form["ChannelPrefix"] == "whatsapp"


@pytest.mark.parametrize(("opened_hours_ago", "fails_with"), [(None, 63016), (25, 63016), (23, None)])
def test_free_form_text_only_inside_the_24_hour_window(fake, messages, opened_hours_ago, fails_with):
    if opened_hours_ago is not None:
        fake.whatsapp_inbound(USER, at=time.time() - opened_hours_ago * 3600)
    sent = messages.create(to=USER, from_=SENDER, body="Your parcel is at the door", status_callback="http://x/cb")
    assert sent.status == "queued"  # Twilio answers 201 either way; the failure comes later
    assert _stored(fake, sent.sid)["_fails_with"] == fails_with
    if fails_with:
        assert fake.status_callback_for(sent.sid, "failed").form["ErrorCode"] == str(fails_with)


def test_a_number_not_on_whatsapp_fails_with_63003(fake, messages):
    fake.not_on_whatsapp.add("+447700900123")
    sent = messages.create(to=USER, from_=SENDER, content_sid=TEMPLATE)
    assert _stored(fake, sent.sid)["_fails_with"] == 63003


@pytest.mark.parametrize(("kwargs", "code"), [
    ({"to": "+447700900123", "from_": SENDER, "body": "x"}, 21910),
    ({"to": USER, "from_": SENDER, "content_sid": TEMPLATE, "content_variables": "[1]"}, 21656),
    ({"to": USER, "from_": SENDER, "content_sid": TEMPLATE, "content_variables": '{"1": 2}'}, 21656),
    ({"to": USER, "from_": SENDER, "content_sid": "HX-not-a-sid"}, 20404),
])
def test_refused_at_once(messages, kwargs, code):
    with pytest.raises(TwilioRestException) as refused:
        messages.create(**kwargs)
    assert refused.value.code == code
