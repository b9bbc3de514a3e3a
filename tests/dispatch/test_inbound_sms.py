"""Twilio inbound messages: STOP / START / HELP (and synonyms) update SMS consent of every
recipient with the sender's number; signature checked before anything else."""

from __future__ import annotations

import logging

import pytest

from orchestrator.storage.models import Recipient
from tests.fakes.twilio_fake import SIGNATURE_HEADER, sign
from tests.logcapture import captured_logs

from .conftest import TOKEN

URL = "http://localhost/webhooks/twilio/inbound"
PHONE = "+447400123456"


def inbound(client, body: str, *, sender: str = PHONE, extra: dict | None = None, signature: str | None = None):
    form = {"MessageSid": "SM" + "7" * 32, "AccountSid": "AC" + "1" * 32, "From": sender,
            "To": "+15005550006", "Body": body, "NumMedia": "0", **(extra or {})}
    sig = signature if signature is not None else sign(TOKEN, URL, form)
    return client.post("/webhooks/twilio/inbound", data=form, headers={SIGNATURE_HEADER: sig})


def sms_consent(state, user_id):
    with state.db.session() as s:
        return (s.get(Recipient, user_id).consents or {}).get("sms")


@pytest.mark.parametrize("word", ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel", "END", "quit"])
def test_opt_out_keywords_withdraw_sms_consent_of_every_profile_with_the_number(client, state, user, word):
    user("u-1")
    user("u-2")  # same phone
    user("u-3", phone="+447400999999")
    r = inbound(client, word)
    assert r.status_code == 200
    assert r.mimetype == "text/xml"
    assert r.get_data(as_text=True).endswith("<Response />")  # Twilio auto-replies itself
    assert sms_consent(state, "u-1") is False and sms_consent(state, "u-2") is False
    assert sms_consent(state, "u-3") is True


@pytest.mark.parametrize("word", ["START", "yes", "Unstop"])
def test_opt_in_keywords_give_sms_consent_back(client, state, user, word):
    user("u-1", consents={"sms": False})
    assert inbound(client, word).status_code == 200
    assert sms_consent(state, "u-1") is True


def test_after_stop_the_policy_stops_choosing_sms_and_start_restores_it(client, auth, state, user):
    user("u-1")
    explain = {"recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "Code 123456"}}
    assert client.post("/v1/routing/explain", headers=auth, json=explain).get_json()["steps"][0]["channel"] == "sms"
    inbound(client, "STOP")
    plan = client.post("/v1/routing/explain", headers=auth, json=explain).get_json()
    assert "sms" not in [s["channel"] for s in plan["steps"]]
    assert {e["channel"]: e["rule"] for e in plan["excluded"]}["sms"] == "sms-needs-consent"
    inbound(client, "start")
    assert client.post("/v1/routing/explain", headers=auth, json=explain).get_json()["steps"][0]["channel"] == "sms"


@pytest.mark.parametrize("body", ["HELP", "info", "please stop calling me", "Thanks!", ""])
def test_help_and_ordinary_replies_change_nothing(client, state, user, body):
    user("u-1")
    r = inbound(client, body)
    assert r.status_code == 200 and "<Response />" in r.get_data(as_text=True)
    assert sms_consent(state, "u-1") is True


def test_twilio_opt_out_type_wins_over_the_text(client, state, user):
    user("u-1")
    inbound(client, "arrêt", extra={"OptOutType": "STOP"})  # a custom keyword Twilio classified
    assert sms_consent(state, "u-1") is False


def test_bad_signature_is_403_and_changes_nothing(client, state, user):
    user("u-1")
    r = inbound(client, "STOP", signature="bm90IGEgc2lnbmF0dXJl")
    assert r.status_code == 403
    assert r.get_json()["error"]["field"] == "X-Twilio-Signature"
    assert inbound(client, "STOP", signature="").status_code == 403
    assert sms_consent(state, "u-1") is True


def test_a_signed_request_without_from_is_422(client):
    form = {"MessageSid": "SM" + "7" * 32, "Body": "STOP"}
    r = client.post("/webhooks/twilio/inbound", data=form, headers={SIGNATURE_HEADER: sign(TOKEN, URL, form)})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "From"


def test_json_body_is_415(client):
    r = client.post("/webhooks/twilio/inbound", json={"From": PHONE, "Body": "STOP"},
                    headers={SIGNATURE_HEADER: "x"})
    assert r.status_code == 415


def test_the_phone_is_never_logged_in_clear(client, user):
    user("u-1")
    with captured_logs({"orchestrator": logging.DEBUG}) as logs:
        inbound(client, "STOP")
    text = logs.text
    assert "twilio inbound message" in text and '"event": "opt_out"' in text
    assert "7400123456" not in text and PHONE not in text
