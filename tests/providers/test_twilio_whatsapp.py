"""The WhatsApp provider against the Twilio wire fake: `whatsapp:` addresses on both ends, the
configured template sent as ContentSid with the title and text as its variables (no Body),
free-form text without a template, settings checked at startup, and its error codes read as
what they say about the person (not on WhatsApp: the opt-in goes, the number stays)."""

from __future__ import annotations

import json

import pytest

from providers.base import AttemptStatus, Channel, Delivery
from providers.spec import AddressSignal
from providers.twilio_whatsapp import SPEC, TwilioWhatsAppProvider, WhatsAppSettings, address_signal
from tests.fakes.twilio_fake import TwilioFake

SID, TOKEN = "AC" + "2" * 32, "whatsapp-token"
SENDER = "+14155238886"
TEMPLATE = "HX" + "b" * 32


@pytest.fixture
def fake():
    with TwilioFake(SID, TOKEN) as server:
        yield server


def provider(fake, **env):
    settings = WhatsAppSettings.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                                          "TWILIO_WHATSAPP_FROM": SENDER, "TWILIO_API_BASE_URL": fake.base_url,
                                          **env})
    return TwilioWhatsAppProvider(settings, timeout=2.0)


def delivery(**over):
    return Delivery(**{"message_id": "m-1", "attempt_id": "a-1", "channel": Channel.WHATSAPP,
                       "to": "+447700900123", "title": "Minji", "body": "invited you to join",
                       "status_callback_url": "http://localhost/webhooks/twilio", **over})


def test_the_template_goes_as_content_sid_with_title_and_text_as_its_variables(fake):
    result = provider(fake, TWILIO_WHATSAPP_CONTENT_SID=TEMPLATE).send(delivery())
    form = fake.requests[-1].form
    assert (form["To"], form["From"]) == ("whatsapp:+447700900123", "whatsapp:" + SENDER)
    assert form["ContentSid"] == TEMPLATE and "Body" not in form
    assert json.loads(form["ContentVariables"]) == {"1": "Minji", "2": "invited you to join"}
    assert form["StatusCallback"] == "http://localhost/webhooks/twilio"
    assert result.provider == "twilio-whatsapp" and result.status == AttemptStatus.QUEUED
    assert fake.messages[result.provider_message_id]["_fails_with"] is None  # a template may start a conversation


def test_without_a_template_the_text_goes_free_form_and_fails_outside_the_window(fake):
    result = provider(fake).send(delivery(title=""))
    form = fake.requests[-1].form
    assert form["Body"] == "invited you to join" and "ContentSid" not in form
    assert fake.messages[result.provider_message_id]["_fails_with"] == 63016  # the policy's fallback takes it


def test_a_whatsapp_provider_refuses_an_sms_delivery(fake):
    with pytest.raises(ValueError, match="sends whatsapp, not sms"):
        provider(fake).send(delivery(channel=Channel.SMS))


@pytest.mark.parametrize(("env", "problem"), [
    ({"TWILIO_WHATSAPP_FROM": "14155238886"}, "TWILIO_WHATSAPP_FROM: expected an E.164 number"),
    ({"TWILIO_WHATSAPP_CONTENT_SID": "HX123"}, "TWILIO_WHATSAPP_CONTENT_SID: expected a Content SID"),
    ({"TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}, "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not"),
])
def test_settings_are_checked_at_startup(env, problem):
    base = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_WHATSAPP_FROM": SENDER}
    with pytest.raises(ValueError, match=problem):
        WhatsAppSettings.from_env({**base, **env})


def test_not_configured_without_a_sender():
    assert WhatsAppSettings.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}) is None
    assert SPEC.channel == Channel.WHATSAPP and SPEC.settings({}) is None
    assert TOKEN not in repr(WhatsAppSettings.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
                                                        "TWILIO_WHATSAPP_FROM": "whatsapp:" + SENDER}))


@pytest.mark.parametrize(("code", "status", "signal"), [
    ("63003", AttemptStatus.FAILED, AddressSignal.OPT_OUT),       # not on WhatsApp
    ("21610", AttemptStatus.FAILED, AddressSignal.OPT_OUT),       # the user blocked the sender
    ("63016", AttemptStatus.FAILED, None),                        # outside the window: this message only
    ("21211", AttemptStatus.UNDELIVERED, None),                   # never "dead" from WhatsApp: SMS keeps the number
    ("63003", AttemptStatus.DELIVERED, None),                     # only a failure says anything
])
def test_codes_read_as_what_they_say_about_the_person(code, status, signal):
    reading = address_signal(code, status)
    assert (reading.signal if reading else None) == signal
