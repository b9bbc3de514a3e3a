"""Request bodies sent with `Transfer-Encoding: chunked` (streaming clients, some proxies) are
read like any other body, under the same size cap (issue #19 §3). Through the real server:
the test client never sends chunked bodies."""

from __future__ import annotations

import json
import socket

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
        assert (r.json()["error"]["code"], r.json()["error"]["field"]) == ("payload_too_large", "body")


def test_an_empty_chunked_body_is_still_named_empty(served):
    base, auth = served
    with httpx.Client(base_url=base, headers={**auth, "Content-Type": "application/json"}, timeout=10) as http:
        r = http.post("/v1/messages", content=chunks(b""))
        assert r.status_code == 400 and r.json()["error"]["field"] == "body", r.text


def test_stalled_chunked_bodies_without_credentials_hold_no_thread(make_app, make_key):
    """A body is read when a route asks for it, after the credentials: clients that start a
    chunked body and stall (more of them than the server has threads) are answered 401 and
    hold nothing; the API goes on answering."""
    with running(make_app, worker=False, threads=4) as (app, base, _):
        host, port = base.removeprefix("http://").split(":")
        stalled = []
        try:
            for _ in range(12):
                sock = socket.create_connection((host, int(port)), timeout=5)
                sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n")
                stalled.append(sock)
            for sock in stalled:
                assert sock.recv(100).startswith(b"HTTP/1.1 401"), "answered before the body ended"
            r = httpx.get(f"{base}/readyz", timeout=5)
            assert r.status_code in (200, 503), r.text
        finally:
            for sock in stalled:
                sock.close()
