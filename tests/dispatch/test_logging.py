"""Logs carry ids, never phone numbers, emails or message bodies."""

from __future__ import annotations

import io
import json
import logging

from orchestrator.logs import JsonFormatter

PHONE, EMAIL, BODY = "+447400123456", "ada@example.com", "Your secret code is 918273"


def test_pipeline_logs_are_json_with_ids_and_no_personal_data(client, user, send, drain, twilio, state):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    watched = [logging.getLogger("orchestrator"), logging.getLogger("twilio"), logging.getLogger("celery")]
    old_levels = [lg.level for lg in watched]
    for lg in watched:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG if lg.name == "orchestrator" else logging.INFO)
    try:
        user(phone=PHONE, email=EMAIL)
        twilio.fail_next(503)  # a retry and a warning get logged too
        sent = send(body=BODY)
        drain()
        cb = twilio.status_callback_for(next(iter(twilio.messages)), "delivered")
        client.post("/webhooks/twilio", data=cb.form, headers=cb.headers)
    finally:
        for lg, level in zip(watched, old_levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert any(entry.get("message_id") == sent["id"] for entry in lines), text
    for secret in (PHONE, PHONE[1:], "7400123456", EMAIL, BODY):
        assert secret not in text
