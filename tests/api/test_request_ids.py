"""Request ids: a caller's X-Request-Id is kept when safe, replaced otherwise, echoed on
every response, and carried by every log line of the request and of the delivery it causes;
the access line and the HTTP metric name the route template, never the raw path."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from prometheus_client import generate_latest

from orchestrator.metrics import REGISTRY
from tests.live_server import running
from tests.logcapture import captured_logs

HEADER = "X-Request-Id"
ULID_CHARS = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


def generated(value: str) -> bool:
    return len(value) == 26 and set(value) <= ULID_CHARS


@pytest.mark.parametrize("sent,kept", [
    ("req-1234", True),
    ("0f8fe6a2-5b1c-4b9e-9a53-2f6f3f7b9d10", True),
    ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", True),
    ("a" * 128, True),
    ("a" * 129, False),           # over-long
    ("has space", False),
    ("ada@example.com", False),   # an address must not reach the logs through the id
    ("+447400123456", False),
    ("x\x01y", False),
    ("ünïcode", False),
    ("", False),
])
def test_a_safe_id_is_echoed_and_anything_else_replaced(client, sent, kept):
    headers = {HEADER: sent} if sent.isascii() else {HEADER: sent.encode().decode("latin-1")}
    got = client.get("/healthz", headers=headers).headers[HEADER]
    assert (got == sent) if kept else generated(got), got


def test_every_response_carries_one_errors_included(client, auth):
    responses = [
        client.get("/healthz"),
        client.get("/v1/nope"),                                   # 404
        client.get("/v1/messages/x"),                             # 401
        client.delete("/healthz"),                                # 405
        client.get("/v1/messages/a%00b", headers=auth),          # 422 from an early hook
        client.post("/v1/messages", headers=auth, data="{"),      # 4xx from the body parser
    ]
    ids = [r.headers.get(HEADER) for r in responses]
    assert all(i and generated(i) for i in ids), ids
    assert len(set(ids)) == len(ids), "a fresh id per request"


def test_the_request_and_its_delivery_log_with_the_id(make_app):
    with running(make_app) as (app, base, _asgi):
        from orchestrator.access.auth import create_api_key
        from orchestrator.app_state import EXTENSION_KEY

        st = app.extensions[EXTENSION_KEY]
        with st.db.session() as session:
            _, key = create_api_key(session, "t", ["send", "read", "recipients"])
        auth = {"Authorization": f"Bearer {key}"}
        with captured_logs() as logs, httpx.Client(base_url=base, timeout=10) as http:
            assert http.put("/v1/recipients/grace@example.org", headers=auth,
                            json={"email": "grace@example.org"}).status_code in (200, 201)
            r = http.post("/v1/messages", headers={**auth, HEADER: "req-ops-1"}, json={
                "recipient": {"user_id": "grace@example.org"}, "category": "security_alert", "urgency": "high",
                "content": {"title": "t", "body": "b"}})
            assert r.status_code == 202 and r.headers[HEADER] == "req-ops-1"
            message_id = r.json()["id"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if http.get(f"/v1/messages/{message_id}", headers=auth).json()["status"] != "accepted":
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            stream = http.get("/v1/inbox/stream", headers={HEADER: "req-stream-1"})  # no token: 401
        assert stream.status_code == 401 and stream.headers[HEADER] == "req-stream-1"
    lines = logs.lines
    mine = [e for e in lines if e.get("request_id") == "req-ops-1"]
    accepted = [e for e in mine if e["msg"] == "message accepted"]
    assert accepted and accepted[0]["message_id"] == message_id, lines
    access = [e for e in mine if e["logger"] == "orchestrator.access"]
    assert access and access[0]["route"] == "/v1/messages" and access[0]["status_code"] == 202
    assert access[0]["message_id"] == message_id
    sent = [e for e in lines if e["msg"] == "attempt sent" and e.get("message_id") == message_id]
    assert sent and all(e.get("request_id") == "req-ops-1" for e in sent), sent
    # The recipient route is logged by its template: no address in any line.
    assert "grace" not in json.dumps(lines)
    assert any(e.get("route") == "/v1/recipients/<user_id>" for e in lines)


def test_request_duration_is_measured_by_route_template_and_status(client, auth):
    client.get("/v1/recipients/someone-secret", headers=auth)
    client.get("/v1/recipients/someone-else", headers=auth)
    count = REGISTRY.get_sample_value("orchestrator_http_request_duration_seconds_count",
                                      {"method": "GET", "route": "/v1/recipients/<user_id>", "status": "404"})
    assert count is not None and count >= 2
    assert b"someone" not in generate_latest(REGISTRY)
