"""Exact state on every tab, over a real server: an item read, archived or marked read by
read-all on one device is sent again as an `item` event to every open stream of the user
(the acting tab's own included), and the `unread` badge each stream shows equals the
server's count after every event. The token's expiry ends the stream with `expired` at the
expiry time, not at the next keep-alive; 401s on the stream tell expired from revoked."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime

import httpx

from tests.inapp.sse import SSE
from tests.inapp.test_stream_live import live, mint, stream  # noqa: F401

QUIET = 1.0  # seconds without events after which a stream has said all it will about a change


def send_in_app(base, auth, count: int) -> None:
    for n in range(count):
        r = httpx.post(f"{base}/v1/messages", headers=auth, timeout=5, json={
            "recipient": {"user_id": "u-1"}, "category": "onboarding", "content": {"body": f"Item {n}"}})
        assert r.status_code == 202 and r.json()["route"]["steps"][0]["channel"] == "in_app", r.text


def server_unread(base, token) -> tuple[int, list[dict]]:
    body = httpx.get(f"{base}/v1/inbox", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
    return body["unread"], body["items"]


class Tab:
    """One stream, with what its UI would show: the items' states and the badge."""

    def __init__(self, sse: SSE) -> None:
        self.sse = sse
        self.badge: int | None = None
        self.items: dict[str, dict] = {}
        self.changed: list[dict] = []

    def settle(self, until=lambda tab: True, timeout: float = 10.0) -> None:
        """Applies events until `until(tab)` holds and the stream has been quiet a moment."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                event = self.sse.events.get(timeout=QUIET)
            except queue.Empty:
                if until(self):
                    return
                assert time.monotonic() < deadline, f"the stream did not converge; badge {self.badge}"
                continue
            if event.kind == "unread":
                self.badge = event.json()["unread"]
            elif event.kind == "message":
                self.items[event.json()["id"]] = event.json()
                assert event.id, "a message event carries its position"
            elif event.kind == "item":
                assert event.id is None, "an item event does not move Last-Event-ID"
                self.items[event.json()["id"]] = event.json()
                self.changed.append(event.json())


def online(base, auth) -> None:
    r = httpx.put(f"{base}/v1/recipients/u-1", headers=auth, timeout=5,
                  json={"email": "a@example.com", "last_active_at": datetime.now(UTC).isoformat()})
    assert r.status_code in (200, 201), r.text


def test_two_tabs_converge_on_read_archive_and_read_all_with_the_servers_badge(live):  # noqa: F811
    base, auth, _, _ = live(worker=True, STREAM_KEEPALIVE_SECONDS="60")
    online(base, auth)
    phone, _ = mint(base, auth)
    laptop, _ = mint(base, auth)
    tabs = [Tab(stream(base, phone)), Tab(stream(base, laptop, locale="ko"))]
    try:
        send_in_app(base, auth, 4)
        for tab in tabs:
            tab.settle(lambda t: t.badge == 4)
        unread, items = server_unread(base, laptop)
        assert unread == 4
        first, second, *rest = [i["id"] for i in items]
        by_laptop = {"Authorization": f"Bearer {laptop}"}

        # Read on the laptop: both tabs get the item with read_at, and the badge is the server's.
        assert httpx.post(f"{base}/v1/inbox/{first}/read", headers=by_laptop, timeout=5).status_code == 200
        for tab in tabs:
            tab.settle(lambda t: t.changed and t.badge == 3)
            assert [c["id"] for c in tab.changed] == [first]
            assert tab.changed[0]["read_at"] and tab.changed[0]["archived_at"] is None
            assert tab.badge == server_unread(base, phone)[0] == 3
            tab.changed.clear()
        assert tabs[1].items[first]["category_label"] == "시작하기"  # in each stream's own locale
        assert tabs[0].items[first]["category_label"] == "Getting started"

        # Seen changes no count: the item event comes, no unread event is needed.
        assert httpx.post(f"{base}/v1/inbox/{second}/seen", headers=by_laptop, timeout=5).status_code == 200
        for tab in tabs:
            tab.settle(lambda t: t.changed)
            assert [c["id"] for c in tab.changed] == [second] and tab.changed[0]["seen_at"]
            assert tab.changed[0]["read_at"] is None
            assert tab.badge == server_unread(base, phone)[0] == 3
            tab.changed.clear()

        # Archive on the phone: it leaves both lists and the count.
        assert httpx.post(f"{base}/v1/inbox/{second}/archive", headers={"Authorization": f"Bearer {phone}"},
                          timeout=5).status_code == 200
        for tab in tabs:
            tab.settle(lambda t: t.changed and t.badge == 2)
            assert [c["id"] for c in tab.changed] == [second] and tab.changed[0]["archived_at"]
            assert tab.badge == server_unread(base, phone)[0] == 2
            tab.changed.clear()
        assert second not in [i["id"] for i in server_unread(base, phone)[1]]

        # Read-all on the laptop: every item it marked, on both tabs; the badge ends at 0.
        r = httpx.post(f"{base}/v1/inbox/read-all", headers=by_laptop, timeout=5)
        assert r.status_code == 200 and r.json()["read"] == 2
        for tab in tabs:
            tab.settle(lambda t: len(t.changed) == 2 and t.badge == 0)
            assert sorted(c["id"] for c in tab.changed) == sorted(rest)
            assert all(c["read_at"] for c in tab.changed)
            assert tab.badge == server_unread(base, phone)[0] == 0
    finally:
        for tab in tabs:
            tab.sse.close()


def test_expired_arrives_at_the_tokens_expiry_and_ends_the_stream(live):  # noqa: F811
    # Keep-alive far beyond the test: only the expiry timer can end the stream in time.
    base, auth, _, _ = live(IN_APP_TOKEN_TTL_SECONDS="3", STREAM_KEEPALIVE_SECONDS="120")
    online(base, auth)
    r = httpx.post(f"{base}/v1/recipients/u-1/inapp-token", headers=auth, timeout=5)
    token, expires_at = r.json()["token"], datetime.fromisoformat(r.json()["expires_at"])
    opened = stream(base, token)
    assert opened.status == 200
    try:
        event = opened.next("expired", timeout=60)
        arrived = datetime.now(UTC)
        assert event.json() == {}
        assert arrived >= expires_at  # not before the expiry
        assert opened.closed.wait(10), "the stream stayed open after expired"
        assert not any(e.kind == "revoked" for e in list(opened.events.queue))
        # Reconnecting with it now is a 401 the client can act on: refresh, not sign out.
        again = stream(base, token)
        assert again.status == 401
        assert httpx.Response(401, content=again.body).json()["error"]["code"] == "token_expired"
    finally:
        opened.close()


def test_the_stream_401s_name_revoked_and_unknown_tokens(live):  # noqa: F811
    base, auth, _, _ = live()
    token, token_id = mint(base, auth)
    assert httpx.delete(f"{base}/v1/inapp-tokens/{token_id}", headers=auth, timeout=5).status_code == 200
    for value, code in ((token, "token_revoked"), ("ut_unknown", "unauthorized"), ("", "unauthorized")):
        opened = stream(base, value)
        assert opened.status == 401
        assert httpx.Response(401, content=opened.body).json()["error"]["code"] == code


def test_a_malformed_locale_on_the_stream_is_422(live):  # noqa: F811
    base, auth, _, _ = live()
    token, _ = mint(base, auth)
    opened = stream(base, token, locale="x\x01")
    assert opened.status == 422
    assert httpx.Response(422, content=opened.body).json()["error"]["field"] == "locale"
