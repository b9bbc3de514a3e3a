"""Bad client input is a 4xx JSON error naming the field, never a 500 (issue #12 §1), on
SQLite and PostgreSQL. Input refused while the request is parsed (JSON nesting, content type,
escape-heavy strings) or by a link's scheme is refused before any storage and runs on SQLite
only (`PARSE_ONLY`); NUL, lone surrogates, numbers and dates, which a database could refuse
differently, keep both."""

from __future__ import annotations

import json

import pytest

SEND = "/v1/messages"
# A case refused before anything is stored, by a check that reads no database: it runs once.
PARSE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def body(**over):
    base = {
        "recipient": {"user_id": "u-1"},
        "category": "security_alert",
        "urgency": "normal",
        "content": {"title": "Hi", "body": "Hello there."},
    }
    base.update(over)
    return base


def post_raw(client, auth, text: str, path: str = SEND, method: str = "post"):
    return getattr(client, method)(path, headers={**auth, "Content-Type": "application/json"}, data=text)


def assert_error(r, status: int, code: str, field: str):
    assert r.status_code == status, (r.status_code, r.get_data(as_text=True)[:300])
    err = r.get_json()["error"]
    assert err["code"] == code, err
    assert err["field"] == field, err
    assert err["message"].startswith(f"{field}: "), err


@PARSE_ONLY
@pytest.mark.parametrize("nested", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_deep_nesting_in_metadata_is_422(client, auth, nested):
    text = json.dumps(body(metadata={"x": 1}))[:-1] + ', "deep": ' + nested + "}"
    text = text.replace('"metadata": {"x": 1}, "deep": ', '"metadata": {"deep": ') + "}"
    r = post_raw(client, auth, text)
    assert_error(r, 422, "nesting_too_deep", "metadata.deep")


def test_brackets_inside_strings_do_not_count_as_nesting(client, auth):
    r = client.post(SEND, headers=auth, json=body(metadata={"note": "[" * 1000 + "{" * 1000}))
    assert r.status_code == 202, r.get_json()


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "9" * 4000, "-" + "9" * 30])
def test_non_finite_and_oversized_numbers_are_422(client, auth, literal):
    text = json.dumps(body(metadata={"n": 0})).replace('"n": 0', f'"n": {literal}')
    r = post_raw(client, auth, text)
    assert_error(r, 422, "invalid_number", "metadata.n")


def test_nothing_with_nan_is_stored_or_served(client, auth):
    text = json.dumps(body(metadata={"n": 0})).replace('"n": 0', '"n": NaN')
    assert post_raw(client, auth, text).status_code == 422
    r = client.post(SEND, headers=auth, json=body(metadata={"n": 2**62, "f": 1.5}))
    assert r.status_code == 202
    got = client.get(f"{SEND}/{r.get_json()['id']}", headers=auth)
    json.loads(got.get_data(as_text=True))  # strict JSON


@pytest.mark.parametrize(("path", "payload", "field"), [
    ("/v1/recipients/u-1", {"email": "a\x00@example.com"}, "email"),
    ("/v1/recipients/u-1", {"locale": "en\x00GB"}, "locale"),
    ("/v1/recipients/u-1", {"devices": [{"token": "tok\x00en", "platform": "fcm"}]}, "devices.0.token"),
    (SEND, body(metadata={"k": "v\x00"}), "metadata.k"),
    (SEND, body(content={"title": "t", "body": "b\x00"}), "content.body"),
])
def test_nul_in_any_string_is_rejected(client, auth, path, payload, field):
    r = post_raw(client, auth, json.dumps(payload), path=path, method="put" if "recipients" in path else "post")
    assert_error(r, 422, "invalid_character", field)


LONE_SURROGATES = ["\ud800", "a\udfffb", "\udbff"]  # halves of UTF-16 pairs: no database stores them


@pytest.mark.parametrize("surrogate", LONE_SURROGATES)
@pytest.mark.parametrize(("path", "method", "payload", "field"), [
    (SEND, "post", lambda s: body(metadata={"k": s}), "metadata.k"),
    (SEND, "post", lambda s: body(metadata={"k" + s: 1}), "metadata"),
    (SEND, "post", lambda s: body(content={"title": s, "body": "b"}), "content.title"),
    (SEND, "post", lambda s: {**body(content=None), "content": None,
                              "template": {"id": "t", "variables": {"name": s}}}, "template.variables.name"),
    (SEND + "/batch", "post", lambda s: {"category": "otp", "content": {"body": "b"},
                                         "recipients": [{"recipient": {"user_id": "u-1"}, "metadata": {"k": s}}]},
     "recipients.0.metadata.k"),
    ("/v1/recipients/u-1", "put", lambda s: {"email": f"a{s}@example.com"}, "email"),
    ("/v1/routing/explain", "post", lambda s: body(content={"title": "t", "body": s}), "content.body"),
])
def test_lone_surrogates_in_any_string_are_422(client, auth, path, method, payload, field, surrogate):
    """json.dumps writes a lone surrogate as the `\\ud800` escape: valid JSON text, not storable."""
    r = post_raw(client, auth, json.dumps(payload(surrogate)), path=path, method=method)
    assert_error(r, 422, "invalid_character", field)


@pytest.mark.parametrize(("url", "field"), [
    ("/v1/messages/a%00b", "message_id"),
    ("/v1/policies/a%00b", "version"),
    ("/v1/audit?subject=a%00b", "subject"),
])
def test_nul_in_path_and_query_ids_is_422(client, make_key, url, field):
    r = client.get(url, headers=make_key(["admin"]))
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.get_json()["error"]["code"] == "validation_error"
    assert r.get_json()["error"]["field"] == field


@pytest.mark.parametrize("expires_at", ["9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+05:00",
                                        "1969-12-31T23:59:59Z"])
def test_expires_at_out_of_range_is_422(client, auth, expires_at):
    r = client.post(SEND, headers=auth, json=body(expires_at=expires_at))
    assert_error(r, 422, "date_out_of_range", "expires_at")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_last_active_at_out_of_range_is_422(client, auth, when):
    r = client.put("/v1/recipients/u-1", headers=auth, json={"last_active_at": when})
    assert_error(r, 422, "date_out_of_range", "last_active_at")


@pytest.mark.parametrize("query", ["to=0001-01-01", "to=9999-12-31T23:59:59-12:00", "from=0001-01-01"])
def test_decisions_csv_dates_out_of_range_are_422(client, make_key, query):
    r = client.get(f"/v1/decisions.csv?{query}", headers=make_key(["compliance:read"]))
    field = query.split("=")[0]
    assert_error(r, 422, "date_out_of_range", field)


@PARSE_ONLY
def test_text_plain_body_is_415_naming_content_type(client, auth):
    r = client.post(SEND, headers={**auth, "Content-Type": "text/plain"}, data=json.dumps(body()))
    assert_error(r, 415, "unsupported_media_type", "Content-Type")
    r = client.post(SEND, headers=auth, data=json.dumps(body()))  # no Content-Type at all
    assert r.status_code == 415


@PARSE_ONLY
@pytest.mark.parametrize(("content", "field"), [
    ({"body": "b", "action_url": "javascript:alert(3)"}, "content.action_url"),
    ({"body": "b", "action_url": "JaVaScRiPt:alert(3)"}, "content.action_url"),
    ({"body": "b", "action_url": "http://example.com/x"}, "content.action_url"),
    ({"body": "b", "action_url": "data:text/html,<script>"}, "content.action_url"),
    ({"body": "b", "action_url": "myapp://open/1"}, "content.action_url"),
    ({"body": "b", "image_url": "http://example.com/a.png"}, "content.image_url"),
    ({"body": "b", "image_url": "myapp://a.png"}, "content.image_url"),
])
def test_unsafe_links_are_422(client, auth, content, field):
    r = client.post(SEND, headers=auth, json=body(content=content))
    assert_error(r, 422, "invalid_url", field)


def test_https_links_and_configured_deep_links_are_accepted(make_app, clock):
    app = make_app(ACTION_URL_SCHEMES="myapp")
    from orchestrator.access.auth import create_api_key
    from orchestrator.app_state import EXTENSION_KEY

    with app.extensions[EXTENSION_KEY].db.session() as session:
        _, key = create_api_key(session, "t", ["send"])
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    ok = body(content={"body": "b", "action_url": "myapp://open/1", "image_url": "https://cdn.example.com/a.png"})
    assert client.post(SEND, headers=auth, json=ok).status_code == 202
    r = client.post(SEND, headers=auth, json=body(content={"body": "b", "image_url": "myapp://a.png"}))
    assert r.status_code == 422


@PARSE_ONLY
@pytest.mark.parametrize("text", ['"' + '\\"' * 100_000, '{"a": "' + 'x\\"' * 100_000, '[' + '"\\\\",' * 60_000])
def test_unterminated_and_escape_heavy_strings_cost_linear_time(client, auth, text):
    """The nesting check once ran a string pattern from every quote inside an unterminated
    string: `"` then 16,000 `\\"` took 2 s (holding the interpreter), 256 KB a quarter hour."""
    import time

    cpu = time.process_time()
    r = post_raw(client, auth, text)
    assert r.status_code in (400, 413, 422), r.get_data(as_text=True)[:200]
    assert time.process_time() - cpu < 2  # a bound, not a speed test
