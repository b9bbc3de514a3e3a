"""Logs carry ids, never phone numbers, emails or message bodies."""

from __future__ import annotations

import json
import logging

from orchestrator.logs import JsonFormatter
from tests.logcapture import captured_logs

PHONE, EMAIL, BODY = "+447400123456", "ada@example.com", "Your secret code is 918273"


def test_pipeline_logs_are_json_with_ids_and_no_personal_data(client, user, send, drain, twilio, state):
    with captured_logs({"orchestrator": logging.DEBUG, "twilio": logging.INFO, "celery": logging.INFO}) as logs:
        user(phone=PHONE, email=EMAIL)
        twilio.fail_next(503)  # a retry and a warning get logged too
        sent = send(body=BODY)
        drain()
        cb = twilio.status_callback_for(next(iter(twilio.messages)), "delivered")
        client.post("/webhooks/twilio", data=cb.form, headers=cb.headers)
    text, lines = logs.text, logs.lines
    assert any(entry.get("message_id") == sent["id"] for entry in lines), text
    for secret in (PHONE, PHONE[1:], "7400123456", EMAIL, BODY):
        assert secret not in text


USER = "grace.hopper@example.org"


def test_requests_for_an_email_like_user_id_leave_no_trace_of_it_in_the_logs(client, make_key, state, drain):
    with captured_logs(dict.fromkeys(("", "orchestrator", "werkzeug"), logging.DEBUG)) as logs:
        auth = make_key(["admin"])
        assert client.put(f"/v1/recipients/{USER}", headers=auth,
                          json={"email": USER, "phone": PHONE}).status_code in (200, 201)
        client.get(f"/v1/recipients/{USER}", headers=auth)
        client.put(f"/v1/recipients/{USER}/presence", headers=auth, json={"connected": True})
        client.post(f"/v1/recipients/{USER}/inapp-token", headers=auth)
        client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": USER}, "category": "security_alert", "urgency": "high",
            "content": {"title": "t", "body": "b"}})
        drain()
        client.get(f"/v1/audit?subject=recipient:{USER}", headers=auth)
        client.get(f"/v1/nope/{USER}", headers=auth)
    text = logs.text
    for secret in (USER, "grace.hopper", "grace.hopper%40example.org", PHONE):
        assert secret not in text


def test_the_formatter_masks_addresses_whatever_a_call_site_passes():
    record = logging.LogRecord("orchestrator.x", logging.INFO, __file__, 1,
                               "PUT /v1/recipients/%s sms to %s, also grace.hopper%%40example.org", (USER, PHONE), None)
    record.user_id = USER
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert USER not in line and PHONE not in line and "grace.hopper" not in line
    assert entry["user_id"].startswith("u:") and entry["msg"].count("[email]") == 2 and "[phone]" in entry["msg"]
