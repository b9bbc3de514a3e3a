"""The in-app stream over a real server (uvicorn, the ASGI app `orchestrator serve` runs):
revocation closes open streams, the per-token and per-user caps answer 429 JSON, engagement
on one device moves the badge on another, and open streams never starve the API."""

from __future__ import annotations

import socket
from contextlib import ExitStack
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest

from orchestrator.app_state import EXTENSION_KEY
from tests.inapp.conftest import key_for
from tests.inapp.sse import SSE
from tests.live_server import running


@pytest.fixture
def live(make_app):
    """Starts a real server; returns (base_url, api-key headers, app state, asgi app)."""
    with ExitStack() as stack:

        def start(threads: int = 8, worker: bool = False, **env):
            app, base, asgi = stack.enter_context(running(make_app, worker=worker, threads=threads, **env))
            return base, key_for(app), app.extensions[EXTENSION_KEY], asgi

        yield start


def mint(base, auth, user_id="u-1") -> tuple[str, str]:
    r = httpx.post(f"{base}/v1/recipients/{user_id}/inapp-token", headers=auth, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["token"], r.json()["token_id"]


def stream(base, token, **params) -> SSE:
    return SSE(f"{base}/v1/inbox/stream", params={"token": token, **params})


def test_revocation_closes_open_streams_within_seconds(live):
    base, auth, _, _ = live(STREAM_KEEPALIVE_SECONDS="60")
    (first, first_id), (second, _) = mint(base, auth), mint(base, auth)
    one, two = stream(base, first), stream(base, second)
    try:
        assert (one.status, two.status) == (200, 200)
        assert httpx.delete(f"{base}/v1/inapp-tokens/{first_id}", headers=auth, timeout=5).status_code == 200
        one.next("revoked", timeout=5)
        assert one.closed.wait(5), "the revoked token's stream stayed open"
        assert not two.closed.is_set()  # another token of the same user is untouched
        assert stream(base, first).status == 401
        r = httpx.post(f"{base}/v1/recipients/u-1/inapp-tokens/revoke", headers=auth, timeout=5)
        assert r.json()["revoked"] == 1
        two.next("revoked", timeout=5)
        assert two.closed.wait(5)
    finally:
        one.close()
        two.close()


def test_streams_per_token_are_capped_with_429_json(live):
    base, auth, _, _ = live(STREAMS_PER_TOKEN="2")
    token, _ = mint(base, auth)
    opened = [stream(base, token) for _ in range(2)]
    try:
        assert [s.status for s in opened] == [200, 200]
        third = stream(base, token)
        assert third.status == 429 and third.closed.wait(5)
        error = httpx.Response(429, content=third.body).json()["error"]
        assert error["code"] == "too_many_streams" and error["field"] == "token"
        assert stream(base, mint(base, auth)[0]).status == 200  # another token of the same user may
        opened[0].close()
        for _ in range(50):  # the server notices the disconnect on its own schedule
            again = stream(base, token)
            if again.status == 200:
                break
            again.close()
            opened[1].closed.wait(0.1)
        assert again.status == 200
    finally:
        for s in opened:
            s.close()


def test_streams_per_user_are_capped_with_429_json(live):
    base, auth, _, _ = live(STREAMS_PER_USER="3", STREAMS_PER_TOKEN="10")
    opened = [stream(base, mint(base, auth)[0]) for _ in range(3)]
    try:
        assert [s.status for s in opened] == [200, 200, 200]
        fourth = stream(base, mint(base, auth)[0])
        assert fourth.status == 429
        error = httpx.Response(429, content=fourth.body).json()["error"]
        assert error["code"] == "too_many_streams" and error["field"] == "user"
        assert stream(base, mint(base, auth, "u-2")[0]).status == 200  # other users are not affected
    finally:
        for s in opened:
            s.close()


def test_engagement_on_one_device_moves_the_badge_on_another(live):
    base, auth, _, _ = live(worker=True)
    httpx.put(f"{base}/v1/recipients/u-1", headers=auth, timeout=5,
              json={"email": "a@example.com", "last_active_at": datetime.now(UTC).isoformat()})
    phone, _ = mint(base, auth)
    laptop, _ = mint(base, auth)
    on_phone = stream(base, phone)
    try:
        ids = []
        for body in ("Take the tour", "Invite your team"):
            r = httpx.post(f"{base}/v1/messages", headers=auth, timeout=5, json={
                "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"body": body}})
            assert r.status_code == 202 and r.json()["route"]["steps"][0]["channel"] == "in_app", r.text
            ids.append(on_phone.next("message", timeout=5).json()["id"])
        while on_phone.next("unread").json()["unread"] != 2:
            pass
        laptop_auth = {"Authorization": f"Bearer {laptop}"}
        assert httpx.post(f"{base}/v1/inbox/{ids[0]}/read", headers=laptop_auth, timeout=5).status_code == 200
        assert on_phone.next("unread").json() == {"unread": 1}
        assert httpx.post(f"{base}/v1/inbox/{ids[1]}/archive", headers=laptop_auth, timeout=5).status_code == 200
        assert on_phone.next("unread").json() == {"unread": 0}
    finally:
        on_phone.close()


def _open_raw_stream(base: str, token: str) -> socket.socket:
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    sock.sendall(f"GET /v1/inbox/stream?token={token} HTTP/1.1\r\nHost: {url.netloc}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the stream"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    return sock


def test_many_open_streams_do_not_starve_the_api(live):
    """64 open streams on a server with 4 API threads: the API still answers. A stream
    holds no thread, so this fails only if streams were served from the thread pool."""
    base, auth, _, asgi = live(threads=4, STREAMS_PER_TOKEN="100", STREAMS_PER_USER="100")
    httpx.put(f"{base}/v1/recipients/u-1", headers=auth, json={"email": "a@example.com"}, timeout=5)
    token, _ = mint(base, auth)
    socks = []
    try:
        socks = [_open_raw_stream(base, token) for _ in range(64)]
        assert asgi.hub.open_count == 64
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        r = httpx.post(f"{base}/v1/messages", headers=auth, timeout=5, json={
            "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"body": "Still here"}})
        assert r.status_code == 202, r.text
        assert httpx.get(f"{base}/v1/inbox", headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    finally:
        for s in socks:
            s.close()
