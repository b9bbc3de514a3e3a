"""GET /v1/messages (filters, visibility) and the cursor pagination every list route shares."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

LIST = "/v1/messages"


def send(client, headers, clock, *, user_id="u-1", category="otp", key=None, **extra):
    if key:
        headers = {**headers, "Idempotency-Key": key}
    r = client.post("/v1/messages", headers=headers, json={
        "recipient": {"user_id": user_id}, "category": category, "urgency": "high",
        "content": {"body": "Your code is 123456"}, **extra})
    assert r.status_code == 202, r.get_json()
    clock.advance(seconds=1)
    return r.get_json()["id"]


def walk(client, headers, url, items_key, limit):
    seen, cursor, pages = [], None, 0
    while True:
        sep = "&" if "?" in url else "?"
        page_url = f"{url}{sep}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = client.get(page_url, headers=headers)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert len(body[items_key]) <= limit
        seen += body[items_key]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, pages


@pytest.fixture
def users(client, auth):
    for uid in ("u-1", "u-2"):
        r = client.put(f"/v1/recipients/{uid}", headers=auth, json={
            "phone": "+44 7400 123456", "email": "a@example.com", "consents": {"sms": True, "email": True}})
        assert r.status_code in (200, 201)


def test_pages_cover_every_message_once_newest_first(client, auth, clock, users):
    ids = [send(client, auth, clock) for _ in range(5)]
    seen, pages = walk(client, auth, LIST, "messages", 2)
    assert [m["id"] for m in seen] == ids[::-1]
    assert pages == 3
    first = seen[0]
    assert first["status"] == "accepted" and first["category"] == "otp" and first["user_id"] == "u-1"


def test_new_messages_do_not_shift_the_pages(client, auth, clock, users):
    ids = [send(client, auth, clock) for _ in range(4)]
    r = client.get(f"{LIST}?limit=2", headers=auth).get_json()
    send(client, auth, clock)  # arrives between two page reads
    nxt = client.get(f"{LIST}?limit=2&cursor={r['next_cursor']}", headers=auth).get_json()
    assert [m["id"] for m in r["messages"] + nxt["messages"]] == ids[::-1]


def test_filters(client, auth, clock, users):
    a = send(client, auth, clock, user_id="u-1", key="order-1")
    start = clock.now
    b = send(client, auth, clock, user_id="u-2", category="security_alert")
    c = send(client, auth, clock, user_id="u-2", send_at=(clock.now + timedelta(hours=1)).isoformat())
    end = clock.now

    def ids(query):
        r = client.get(f"{LIST}?{query}", headers=auth)
        assert r.status_code == 200, r.get_json()
        return [m["id"] for m in r.get_json()["messages"]]

    assert ids("user_id=u-2") == [c, b]
    assert ids("category=security_alert") == [b]
    assert ids("status=scheduled") == [c]
    assert ids("status=scheduled,accepted") == [c, b, a]
    assert ids("idempotency_key=order-1") == [a]
    assert ids("idempotency_key=order-2") == []
    frm = start.isoformat().replace("+00:00", "Z")
    assert ids(f"from={frm}") == [c, b]
    assert ids(f"from={frm}&to={(end - timedelta(seconds=1)).isoformat().replace('+00:00', 'Z')}") == [b]


def test_visibility(client, auth, make_key, clock, users):
    mine = send(client, auth, clock)
    other = make_key(name="other")
    theirs = send(client, other, clock)
    assert [m["id"] for m in client.get(LIST, headers=auth).get_json()["messages"]] == [mine]
    assert [m["id"] for m in client.get(LIST, headers=other).get_json()["messages"]] == [theirs]
    compliance = make_key(scopes=("compliance:read",), name="auditor")
    assert [m["id"] for m in client.get(LIST, headers=compliance).get_json()["messages"]] == [theirs, mine]
    assert client.get(LIST, headers=make_key(scopes=("recipients",), name="r")).status_code == 403


GOOD_CURSOR_SHAPE = base64.urlsafe_b64encode(b'["2026-03-10T12:00:00+00:00","01J"]').decode().rstrip("=")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"),
    ("limit=201", "limit"),
    ("limit=abc", "limit"),
    ("limit=1e3", "limit"),
    ("limit=-1", "limit"),
    ("limit=99999999999999999999999", "limit"),
    ("limit=", "limit"),
    ("cursor=!!!", "cursor"),
    ("cursor=" + b64(b"not json"), "cursor"),
    ("cursor=" + b64(b'["2026-03-10T12:00:00+00:00"]'), "cursor"),
    ("cursor=" + b64(b'["2026-03-10T12:00:00", "x"]'), "cursor"),       # naive
    ("cursor=" + b64(b'["99999-03-10T12:00:00+00:00", "x"]'), "cursor"),
    ("cursor=" + b64(b'[1, 2]'), "cursor"),
    ("cursor=" + b64(b'["2026-03-10T12:00:00+00:00", "a\\u0000b"]'), "cursor"),
    ("cursor=" + b64(b'[' * 5000), "cursor"),
    ("cursor=" + "A" * 2000, "cursor"),
    ("status=sending", "status"),
    ("status=", "status"),
    ("status=,", "status"),
    ("from=yesterday", "from"),
    ("from=2026-03-10T12:00:00", "from"),
    ("from=9000-12-31T23:59:59-23:59", "from"),
    ("to=0001-01-01T00:00:00Z", "to"),
    ("from=2026-03-10T12:00:00Z&to=2026-03-10T11:00:00Z", "to"),
    ("user_id=a%20b", "user_id"),
    ("user_id=" + "u" * 201, "user_id"),
    ("category=" + "c" * 65, "category"),
    ("category=", "category"),
    ("idempotency_key=" + "k" * 256, "idempotency_key"),
    ("colour=red", "colour"),
    ("user_id=a%00b", "user_id"),
])
def test_bad_parameters_name_themselves(client, auth, query, field):
    r = client.get(f"{LIST}?{query}", headers=auth)
    assert r.status_code == 422, (query, r.get_json())
    assert r.get_json()["error"]["field"] == field


def test_keys_policies_and_audit_share_the_pagination(client, make_key, state, clock):
    admin = make_key(scopes=("admin", "compliance:read"), name="admin")
    for i in range(4):
        make_key(name=f"k{i}")
    keys, pages = walk(client, admin, "/v1/keys", "keys", 2)
    assert len(keys) == 5 and pages == 3 and len({k["id"] for k in keys}) == 5
    names = [k["name"] for k in keys]
    assert names.index("k0") < names.index("k3")  # oldest first, as before
    policies, _ = walk(client, admin, "/v1/policies", "policies", 1)
    assert len(policies) >= 1
    for k in keys[1:4]:  # revocations are audited
        r = client.delete(f"/v1/keys/{k['id']}", headers=admin, json={"reason": "rotated"})
        assert r.status_code == 200
    entries, pages = walk(client, admin, "/v1/audit", "entries", 1)
    assert len(entries) == pages == 4 and [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    for url, limit in (("/v1/keys", 501), ("/v1/policies", 501), ("/v1/audit", 1001)):
        r = client.get(f"{url}?limit={limit}", headers=admin)
        assert r.status_code == 422 and r.get_json()["error"]["field"] == "limit"
        r = client.get(f"{url}?cursor=zz", headers=admin)
        assert r.status_code == 422 and r.get_json()["error"]["field"] == "cursor"


def test_rows_created_at_the_same_instant_page_by_id(client, auth, users):
    """A batch gives its messages one created_at: the id breaks the tie, nothing repeats or is lost."""
    r = client.post("/v1/messages/batch", headers=auth, json={
        "category": "otp", "content": {"body": "1"},
        "recipients": [{"recipient": {"user_id": "u-1"}} for _ in range(7)]})
    ids = [x["id"] for x in r.get_json()["results"]]
    seen, pages = walk(client, auth, LIST, "messages", 3)
    assert sorted(m["id"] for m in seen) == sorted(ids) and pages == 3
    assert [m["id"] for m in seen] == sorted(ids, reverse=True)
