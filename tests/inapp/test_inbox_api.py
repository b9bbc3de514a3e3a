"""The inbox API on both databases: cursor pages, the unread total, bad parameters,
held items released into the same response, archive, read-all, token revocation, CORS on
the client routes only, and the served client files."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest

ALLOWED = "https://app.example.com"


@pytest.fixture
def online(client, auth, clock):
    """A user active now and present (a heartbeat), so in-app is routed live."""

    def make(user, user_id="u-1"):
        user(user_id, last_active_at=clock.now.isoformat())
        assert client.post(f"/v1/recipients/{user_id}/presence", headers=auth).status_code == 200
        return user_id

    return make


def fill(client, auth, online, user, send, drain, clock, days=4, per_day=2) -> list[str]:
    """Sends `days * per_day` in-app messages (the in-app cap is 3 a day); items sent the
    same day share `sent_at`, so pages must break ties by id. Returns message ids."""
    sent = []
    for day in range(days):
        online(user)
        sent += [send(body=f"day {day} item {i}")["id"] for i in range(per_day)]
        drain()
        clock.advance(days=1)
    return sent


def pages(client, headers, limit):
    out, cursor = [], None
    for _ in range(50):
        query = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/inbox", headers=headers, query_string=query)
        assert r.status_code == 200, r.get_json()
        out.append(r.get_json())
        cursor = out[-1]["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination never ended")


def test_cursor_pages_cover_every_item_exactly_once(client, auth, online, user, send, drain, clock, user_token):
    sent = fill(client, auth, online, user, send, drain, clock)
    headers, _ = user_token()
    for limit in (1, 3, 8, 200):
        got = pages(client, headers, limit)
        items = [i for p in got for i in p["items"]]
        assert sorted(i["message_id"] for i in items) == sorted(sent), limit
        assert len({i["id"] for i in items}) == len(sent)
        assert [i["created_at"] for i in items] == sorted((i["created_at"] for i in items), reverse=True)
        assert all(p["unread"] == len(sent) and p["user_id"] == "u-1" for p in got)
        assert all(len(p["items"]) == limit for p in got[:-1])
    assert len(pages(client, headers, 8)) == 1  # exactly one full page: no empty page after it


def test_unread_is_the_users_total_whatever_the_page_size(client, auth, online, user, send, drain, clock,
                                                          user_token):
    fill(client, auth, online, user, send, drain, clock, days=1, per_day=3)
    headers, _ = user_token()
    body = client.get("/v1/inbox?limit=1", headers=headers).get_json()
    assert len(body["items"]) == 1 and body["unread"] == 3 and body["next_cursor"]
    assert client.post(f"/v1/inbox/{body['items'][0]['id']}/read", headers=headers).status_code == 200
    assert client.get("/v1/inbox?limit=1", headers=headers).get_json()["unread"] == 2


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("limit", ["abc", "0", "201", "-1", "1.5", "", " 5", "\x00", "9" * 5000, "٣"])
def test_bad_limit_is_422_naming_limit(client, online, user, user_token, limit):
    online(user)
    headers, _ = user_token()
    r = client.get("/v1/inbox", headers=headers, query_string={"limit": limit})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["code"] == "validation_error" and r.get_json()["error"]["field"] == "limit"


@pytest.mark.parametrize("cursor", [
    "!!!", "\x00", "a" * 1000, _b64(b"no-dot"), _b64(b"1."), _b64(b"x.01ABC"), _b64(b"1.01AB\x00C"),
    _b64(b"9" * 40 + b".01ABC"), _b64(b"-99999999999999999999.01ABC"), _b64("1.ééé".encode()),
    _b64(b"\xff\xfe.01ABC"), _b64(b"1." + b"A" * 27),
])
def test_bad_cursor_is_422_naming_cursor(client, online, user, user_token, cursor):
    online(user)
    headers, _ = user_token()
    r = client.get("/v1/inbox", headers=headers, query_string={"cursor": cursor})
    assert r.status_code == 422, r.get_json()
    assert r.get_json()["error"]["field"] == "cursor"


@pytest.mark.parametrize("item_id", ["x" * 5000, "é", "9" * 30])
def test_bad_item_ids_are_404_json(client, online, user, user_token, item_id):
    online(user)
    headers, _ = user_token()
    for action in ("read", "archive", "seen"):
        r = client.post(f"/v1/inbox/{item_id}/{action}", headers=headers)
        assert r.status_code == 404 and r.get_json()["error"]["field"] == "id", (action, r.get_data())


@pytest.mark.parametrize("item_id", ["\x00", "01ABC%00"])
def test_item_ids_with_nul_are_422_json(client, online, user, user_token, item_id):
    online(user)
    headers, _ = user_token()
    for action in ("read", "archive", "seen"):
        r = client.post(f"/v1/inbox/{item_id}/{action}", headers=headers)
        assert r.status_code == 422 and r.get_json()["error"]["field"] == "attempt_id", (action, r.get_data())


def test_unknown_event_is_404_naming_event(client, online, user, user_token):
    online(user)
    headers, _ = user_token()
    r = client.post("/v1/inbox/01ABC/liked", headers=headers)
    assert r.status_code == 404 and r.get_json()["error"]["field"] == "event"


def test_held_items_are_in_the_response_of_the_fetch_that_releases_them(client, user, send, drain, clock,
                                                                       user_token, attempts):
    user(last_active_at=(clock.now - timedelta(days=1)).isoformat())
    sent = send(body="Take the tour")
    assert sent["route"]["steps"][0]["hold_ttl_seconds"]  # held for the user's next session
    drain()
    assert [a["status"] for a in attempts(sent["id"], "in_app")] == ["queued"]
    headers, _ = user_token()
    clock.advance(hours=1)
    body = client.get("/v1/inbox", headers=headers).get_json()
    assert [i["message_id"] for i in body["items"]] == [sent["id"]] and body["unread"] == 1
    assert [a["status"] for a in attempts(sent["id"], "in_app")] == ["sent"]


def test_archive_removes_the_item_from_the_list_and_the_unread_count(client, auth, online, user, send, drain,
                                                                     clock, user_token):
    fill(client, auth, online, user, send, drain, clock, days=1, per_day=2)
    headers, _ = user_token()
    first, second = client.get("/v1/inbox", headers=headers).get_json()["items"]
    r = client.post(f"/v1/inbox/{first['id']}/archive", headers=headers)
    assert r.status_code == 200 and r.get_json() == {"id": first["id"], "archived": True}
    body = client.get("/v1/inbox", headers=headers).get_json()
    assert [i["id"] for i in body["items"]] == [second["id"]] and body["unread"] == 1
    assert client.post(f"/v1/inbox/{first['id']}/archive", headers=headers).status_code == 200  # idempotent
    # Another user's token cannot archive it.
    online(user, "u-2")
    other, _ = user_token("u-2")
    assert client.post(f"/v1/inbox/{second['id']}/archive", headers=other).status_code == 404
    assert client.get("/v1/inbox", headers=headers).get_json()["unread"] == 1


def test_read_all_marks_every_unread_item_and_cancels_an_escalation_watching_read(
        client, auth, online, user, send, drain, clock, user_token, attempts):
    online(user)
    social = send(category="social", body="Ada: are you coming?")
    tour = send(body="Take the tour")
    drain()
    push = attempts(social["id"], "push")
    assert [(a["status"], a["mode"]) for a in push] == [("queued", "escalate")]
    headers, _ = user_token()
    read_one = client.get("/v1/inbox", headers=headers).get_json()["items"][-1]["id"]
    client.post(f"/v1/inbox/{read_one}/read", headers=headers)
    r = client.post("/v1/inbox/read-all", headers=headers)
    assert r.status_code == 200 and r.get_json() == {"read": 1, "requires_acknowledgement": 0}
    assert client.get("/v1/inbox", headers=headers).get_json()["unread"] == 0
    assert all(a["read_at"] for m in (social, tour) for a in attempts(m["id"], "in_app"))
    assert [a["status"] for a in attempts(social["id"], "push")] == ["cancelled"]
    clock.advance(minutes=11)  # past the escalation's 10 minutes: nothing is sent
    drain()
    assert [a["status"] for a in attempts(social["id"], "push")] == ["cancelled"]
    assert client.post("/v1/inbox/read-all", headers=headers).get_json() == {"read": 0, "requires_acknowledgement": 0}


def test_revoking_a_token_gets_it_401_on_every_inapp_route(client, auth, online, user, send, drain, clock,
                                                           user_token, make_key):
    fill(client, auth, online, user, send, drain, clock, days=1, per_day=1)
    headers, token_id = user_token()
    keep, _ = user_token()
    item = client.get("/v1/inbox", headers=headers).get_json()["items"][0]["id"]
    assert client.delete(f"/v1/inapp-tokens/{token_id}").status_code == 401
    assert client.delete(f"/v1/inapp-tokens/{token_id}", headers=make_key(["read"])).status_code == 403
    assert client.delete(f"/v1/inapp-tokens/{token_id}", headers=make_key(["send", "recipients"])).status_code == 403
    r = client.delete(f"/v1/inapp-tokens/{token_id}", headers=make_key(["inapp:tokens"]))
    assert r.status_code == 200 and r.get_json() == {"token_id": token_id, "revoked": True}
    for method, path in [("get", "/v1/inbox"), ("post", f"/v1/inbox/{item}/read"),
                         ("post", f"/v1/inbox/{item}/archive"), ("post", "/v1/inbox/read-all")]:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 401 and r.get_json()["error"]["field"] == "Authorization", path
    assert client.get("/v1/inbox", headers=keep).status_code == 200  # the user's other token still works


@pytest.mark.parametrize("token_id", ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "x" * 5000, "é" * 26])
def test_revoking_an_unknown_token_is_404_json(client, auth, token_id):
    r = client.delete(f"/v1/inapp-tokens/{token_id}", headers=auth)
    assert r.status_code == 404 and r.get_json()["error"]["field"] == "token_id"


def test_revoking_a_token_id_with_nul_is_422_json(client, auth):
    r = client.delete("/v1/inapp-tokens/" + "\x00" * 26, headers=auth)
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "token_id"


def test_revoking_all_of_a_users_tokens(client, auth, online, user, user_token):
    online(user)
    online(user, "u-2")
    mine = [user_token()[0] for _ in range(2)]
    theirs, _ = user_token("u-2")
    r = client.post("/v1/recipients/u-1/inapp-tokens/revoke", headers=auth)
    assert r.status_code == 200 and r.get_json() == {"user_id": "u-1", "revoked": 2}
    assert [client.get("/v1/inbox", headers=h).status_code for h in mine] == [401, 401]
    assert client.get("/v1/inbox", headers=theirs).status_code == 200
    assert client.post("/v1/recipients/u-1/inapp-tokens/revoke", headers=auth).get_json()["revoked"] == 0
    r = client.post("/v1/recipients/%00/inapp-tokens/revoke", headers=auth)
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "user_id"
    assert client.post("/v1/recipients/u-1/inapp-tokens/revoke").status_code == 401


@pytest.fixture
def cors_app(make_app):
    return make_app(INAPP_CORS_ORIGINS=f"{ALLOWED}, https://other.example.com")


def test_client_routes_answer_allowed_origins_only(cors_app, user_token):
    client = cors_app.test_client()
    from tests.inapp.conftest import key_for

    auth = key_for(cors_app)
    client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com"})
    token = client.post("/v1/recipients/u-1/inapp-token", headers=auth).get_json()["token"]
    user = {"Authorization": f"Bearer {token}"}
    r = client.get("/v1/inbox", headers={**user, "Origin": ALLOWED})
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in r.headers["Vary"] and "Access-Control-Allow-Credentials" not in r.headers
    r = client.get("/v1/inbox", headers={"Origin": ALLOWED})  # errors are readable cross-origin too
    assert r.status_code == 401 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Access-Control-Allow-Origin" not in client.get(
        "/v1/inbox", headers={**user, "Origin": "https://evil.example.com"}).headers
    for path in ("/v1/inbox", "/v1/inbox/01ABC/read", "/v1/inbox/read-all", "/v1/inbox/01ABC/archive"):
        r = client.options(path, headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                                          "Access-Control-Request-Headers": "authorization"})
        assert r.status_code == 204, path
        assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert "POST" in r.headers["Access-Control-Allow-Methods"]
        assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
        r = client.options(path, headers={"Origin": "https://evil.example.com",
                                          "Access-Control-Request-Method": "POST"})
        assert r.status_code == 204 and "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("origins", [ALLOWED, "*"])
def test_api_key_routes_never_answer_cross_origin(make_app, origins):
    from tests.inapp.conftest import key_for

    app = make_app(INAPP_CORS_ORIGINS=origins)
    client = app.test_client()
    auth = {**key_for(app), "Origin": ALLOWED}
    responses = [
        client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com"}),
        client.post("/v1/recipients/u-1/inapp-token", headers=auth),
        client.post("/v1/recipients/u-1/inapp-tokens/revoke", headers=auth),
        client.delete("/v1/inapp-tokens/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=auth),
        client.post("/v1/messages", headers=auth, json={"recipient": {"user_id": "u-1"}, "category": "onboarding",
                                                        "content": {"body": "x"}}),
        client.get("/healthz", headers=auth),
        client.options("/v1/messages", headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}),
        client.options("/v1/recipients/u-1/inapp-token",
                       headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}),
    ]
    assert [r.status_code for r in responses][:2] == [201, 201]
    assert [r.headers.get("Access-Control-Allow-Origin") for r in responses] == [None] * len(responses)
    # ... while the client route does, with the same settings.
    assert client.get("/v1/inbox", headers={"Origin": ALLOWED}).headers.get("Access-Control-Allow-Origin")


def test_the_client_files_are_served(client):
    r = client.get("/client/orchestrator-inbox.js")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/javascript")
    assert b"export class OrchestratorInbox" in r.data and b'customElements.define("orchestrator-inbox"' in r.data
    r = client.get("/client/example.html")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert b"<orchestrator-inbox" in r.data and b"orchestrator-inbox.js" in r.data
    assert client.get("/client/nope.js").status_code == 404
