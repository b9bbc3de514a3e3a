"""The in-app stream over a real HTTP server: a connected client receives a message sent
through the API as soon as it is accepted (accept → embedded worker → inbox → SSE), woken by
the notice and not by the 15 s keep-alive. How fast is measured in bench/, not here: the bound
below only tells a push from a keep-alive wake, with room for a loaded CI box."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY
from tests.live_server import running


@pytest.fixture
def server(make_app):
    with running(make_app) as (app, base, _asgi):
        with app.extensions[EXTENSION_KEY].db.session() as s:
            _, key = create_api_key(s, "stream-test", ["send", "read", "recipients", "inapp:tokens"])
        yield base, {"Authorization": f"Bearer {key}"}


def test_connected_client_receives_a_message_when_it_is_accepted(server):
    base, auth = server
    with httpx.Client(base_url=base, timeout=10) as http:
        http.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com"})
        token = http.post("/v1/recipients/u-1/inapp-token", headers=auth).json()["token"]
        events: list[tuple[float, dict]] = []
        connected = threading.Event()

        def listen():
            with httpx.stream("GET", f"{base}/v1/inbox/stream", params={"token": token}, timeout=10) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                connected.set()
                kind = None
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    if line.startswith("data: ") and kind == "message":
                        events.append((time.monotonic(), json.loads(line[6:])))
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert connected.wait(5)
        sent_at = time.monotonic()
        r = http.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "onboarding",
            "content": {"title": "Welcome", "body": "Take the two-minute tour"}})
        assert r.status_code == 202
        assert [s["channel"] for s in r.json()["route"]["steps"]][0] == "in_app", r.json()["route"]
        listener.join(5)
        assert events, "no event arrived on the stream"
        arrived, entry = events[0]
        assert entry["message_id"] == r.json()["id"] and entry["body"] == "Take the two-minute tour"
        assert arrived - sent_at < 5.0  # the keep-alive is 15 s
        # Streaming it counts as delivery.
        time.sleep(0.2)
        message = http.get(f"/v1/messages/{entry['message_id']}", headers=auth).json()
        assert [a["status"] for a in message["attempts"] if a["channel"] == "in_app"] == ["delivered"]


def test_stream_rejects_a_missing_or_wrong_token(server):
    base, _ = server
    assert httpx.get(f"{base}/v1/inbox/stream", timeout=5).status_code == 401
    assert httpx.get(f"{base}/v1/inbox/stream", params={"token": "ut_nope"}, timeout=5).status_code == 401
