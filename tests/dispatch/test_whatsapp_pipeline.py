"""WhatsApp end to end, through the HTTP API, the task body and the Twilio wire fake: an
invitation to a user who opted in goes by WhatsApp as the approved template, Twilio's signed
`delivered` and `read` callbacks mark it delivered and read (and cancel the SMS fallback); a
number not on WhatsApp withdraws the opt-in, keeps the number, and the SMS fallback goes."""

from __future__ import annotations

import json

import pytest

from tests.dispatch.conftest import SID, TOKEN

TEMPLATE = "HX" + "c" * 32


@pytest.fixture
def app(make_app, twilio):
    return make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                    TWILIO_WHATSAPP_FROM="+14155238886", TWILIO_WHATSAPP_CONTENT_SID=TEMPLATE,
                    TWILIO_API_BASE_URL=twilio.base_url, PUBLIC_BASE_URL="http://localhost")


def _attempts(msg, channel):
    return [a for a in msg["attempts"] if a["channel"] == channel]


def _invite(user, send, drain, twilio):
    user(consents={"sms": True, "email": True, "push": True, "whatsapp": True})
    sent = send(category="invitation", body="Minji invited you to join.", urgency="normal")
    assert [s["channel"] for s in sent["route"]["steps"]] == ["whatsapp", "sms", "email"]
    assert "whatsapp-before-sms" in [t["rule_id"] for t in sent["route"]["trace"]]
    drain()
    assert len(twilio.messages) == 1
    return sent, next(iter(twilio.messages))


def _callback(client, twilio, sid, status, **kw):
    cb = twilio.status_callback_for(sid, status, **kw)
    assert cb.form["ChannelPrefix"] == "whatsapp"
    assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204


def test_an_invitation_goes_by_whatsapp_and_is_read(client, user, send, drain, message, twilio):
    sent, sid = _invite(user, send, drain, twilio)
    form = twilio.requests[-1].form
    assert form["To"] == "whatsapp:+447400123456" and form["ContentSid"] == TEMPLATE
    assert json.loads(form["ContentVariables"])["2"] == "Minji invited you to join."
    wa = _attempts(message(sent["id"]), "whatsapp")[0]
    assert wa["status"] == "sent" and wa["provider"] == "twilio-whatsapp" and wa["provider_message_id"] == sid
    _callback(client, twilio, sid, "delivered")
    _callback(client, twilio, sid, "read")
    drain()
    msg = message(sent["id"])
    wa = _attempts(msg, "whatsapp")[0]
    assert wa["status"] == "delivered" and wa["read_at"] is not None
    assert {a["status"] for a in _attempts(msg, "sms") + _attempts(msg, "email")} == {"cancelled"}
    assert msg["status"] == "read"
    assert len(twilio.messages) == 1  # no SMS went


def test_a_number_not_on_whatsapp_withdraws_the_opt_in_and_sms_follows(client, user, send, drain, message,
                                                                       twilio, state):
    from orchestrator.storage.models import Recipient

    twilio.not_on_whatsapp.add("+447400123456")
    sent, sid = _invite(user, send, drain, twilio)
    _callback(client, twilio, sid, "failed")  # the fake's 63003
    drain()
    msg = message(sent["id"])
    assert _attempts(msg, "whatsapp")[0]["status"] == "failed"
    assert _attempts(msg, "sms")[0]["status"] == "sent"
    assert twilio.requests[-1].form["To"] == "+447400123456"  # the SMS fallback, not WhatsApp
    with state.db.session() as s:
        row = s.get(Recipient, "u-1")
        assert row.consents["whatsapp"] is False and row.phone_valid is True and row.consents["sms"] is True
    again = send(category="invitation", body="Minji invited you again.", urgency="normal")
    assert [s["channel"] for s in again["route"]["steps"]][0] == "sms"
