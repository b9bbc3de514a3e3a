"""Request bodies sent with `Transfer-Encoding: chunked` (streaming clients, some proxies) are
read like any other body, under the same size cap (issue #19 §3). Through the real server:
the test client never sends chunked bodies."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.live_server import running


def chunks(data: bytes, size: int = 7):
    """A body of unknown length: httpx sends it chunked."""
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.fixture
def served(make_app, make_key):
    with running(make_app, worker=False, MAX_BODY_BYTES="4096") as (app, base, _):
        yield base, make_key()


def test_chunked_json_bodies_are_read(served):
    base, auth = served
    with httpx.Client(base_url=base, headers={**auth, "Content-Type": "application/json"}, timeout=10) as http:
        profile = json.dumps({"email": "ada@example.com", "timezone": "UTC"}).encode()
        r = http.put("/v1/recipients/u-1", content=chunks(profile))
        assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
        assert r.status_code == 201, r.text
        send = json.dumps({"recipient": {"user_id": "u-1"}, "category": "security_alert", "urgency": "critical",
                           "content": {"title": "New sign-in", "body": "A new device signed in."}}).encode()
        r = http.post("/v1/messages", content=chunks(send))
        assert r.status_code == 202, r.text
        assert http.get(f"/v1/messages/{r.json()['id']}").json()["category"] == "security_alert"


def test_a_chunked_body_over_the_cap_is_413(served):
    base, auth = served
    big = json.dumps({"recipient": {"user_id": "u-1"}, "category": "security_alert",
                      "content": {"body": "x" * 10_000}}).encode()
    with httpx.Client(base_url=base, headers={**auth, "Content-Type": "application/json"}, timeout=10) as http:
        r = http.post("/v1/messages", content=chunks(big, 1024))
        assert r.status_code == 413, r.text
        assert r.json()["error"]["code"] == "payload_too_large"


def test_an_empty_chunked_body_is_still_named_empty(served):
    base, auth = served
    with httpx.Client(base_url=base, headers={**auth, "Content-Type": "application/json"}, timeout=10) as http:
        r = http.post("/v1/messages", content=chunks(b""))
        assert r.status_code == 400 and r.json()["error"]["field"] == "body", r.text
