"""Finding messages by user, category, channel sent on, status and period: GET /v1/messages and
the review page /review/messages/search (one query, the same cursors), on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from .test_review_pages import login, text

ROW = re.compile(r'<tr><td data-label="Created"><a href="/review/messages/([0-9A-Z]+)"')


@pytest.fixture
def history(client, people, clock, drain):
    """Two users, five messages over three days, sent (sandbox providers) as they are accepted."""
    for user, phone in (("u-1", "+44 7400 123456"), ("u-2", "+44 7400 654321")):
        r = client.put(f"/v1/recipients/{user}", headers=people["backend"], json={
            "email": f"{user}@example.com", "phone": phone, "timezone": "UTC",
            "consents": {"sms": True, "email": True, "push": True}})
        assert r.status_code == 201, r.get_json()
    plan = [("u-1", "otp", "Code", "critical"), ("u-1", "transactional", "=Your parcel shipped", "normal"),
            ("u-2", "otp", "Code for u-2", "critical"), ("u-2", "transactional", "Receipt", "normal"),
            ("u-1", "security_alert", "New sign-in", "critical")]
    sent = {}
    for i, (user, category, title, urgency) in enumerate(plan):
        r = client.post("/v1/messages", headers=people["backend"], json={
            "recipient": {"user_id": user}, "category": category, "urgency": urgency,
            "content": {"title": title, "body": f"Message {i}"}})
        assert r.status_code == 202, r.get_json()
        drain()
        sent[(user, category)] = r.get_json()["id"]
        clock.advance(hours=18)
    return sent


def _api_all(client, headers, **query) -> list[str]:
    """Every page of GET /v1/messages, following next_cursor."""
    ids, cursor = [], None
    for _ in range(20):
        paging = {"cursor": cursor} if cursor else {}
        r = client.get("/v1/messages", headers=headers, query_string={**query, **paging})
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        ids += [m["id"] for m in body["messages"]]
        cursor = body["next_cursor"]
        if not cursor:
            return ids
    raise AssertionError("paging did not end")


def test_api_filters_by_channel_user_category_status_and_period(client, people, history, clock):
    carol = people["carol"]
    everything = _api_all(client, carol, limit=2)
    assert len(everything) == 5 and len(set(everything)) == 5  # three pages, nothing repeated
    assert everything == sorted(everything, reverse=True)       # newest first (ULIDs in time order)
    sms = _api_all(client, carol, channel="sms", limit=1)
    assert set(sms) == {history[("u-1", "otp")], history[("u-2", "otp")], history[("u-1", "security_alert")]}
    assert _api_all(client, carol, channel="sms", user_id="u-2") == [history[("u-2", "otp")]]
    assert _api_all(client, carol, channel="push") == []        # no push device: nothing went by push
    assert set(_api_all(client, carol, category="transactional", channel="email")) == {
        history[("u-1", "transactional")], history[("u-2", "transactional")]}
    start = clock.now - timedelta(hours=18 * 5)
    day_two = _api_all(client, carol, **{"from": (start + timedelta(hours=18)).isoformat(),
                                         "to": (start + timedelta(hours=18 * 3)).isoformat()})
    assert day_two == [history[("u-2", "otp")], history[("u-1", "transactional")]]
    statuses = {m["status"] for m in client.get("/v1/messages", headers=carol).get_json()["messages"]}
    one = sorted(statuses)[0]
    assert all(m["status"] == one for m in client.get("/v1/messages", headers=carol,
                                                      query_string={"status": one}).get_json()["messages"])


@pytest.mark.parametrize(("query", "field"), [
    ({"channel": "fax"}, "channel"),
    ({"channel": "sms\x00"}, "channel"),
    ({"category": "otp\x00"}, "category"),
    ({"user_id": "u-1\x00"}, "user_id"),
    ({"status": "lost"}, "status"),
    ({"from": "99999-01-01T00:00:00Z"}, "from"),
    ({"to": "2026-02-30T00:00:00Z"}, "to"),
    ({"cursor": "not-a-cursor"}, "cursor"),
])
def test_api_refuses_bad_filters_naming_the_field(client, people, history, query, field):
    r = client.get("/v1/messages", headers=people["carol"], query_string=query)
    assert r.status_code == 422, r.get_data(as_text=True)
    assert r.get_json()["error"]["field"] == field


def test_search_page_lists_rows_with_links_titles_and_channels_and_pages(app, people, history):
    carol = login(app, people["carol"])
    r = carol.get("/review/messages/search", query_string={"user_id": "u-1"})
    assert r.status_code == 200
    page = text(r)
    ids = ROW.findall(r.get_data(as_text=True))
    assert ids == [history[("u-1", "security_alert")], history[("u-1", "transactional")], history[("u-1", "otp")]]
    row = re.search(rf'{history[("u-1", "transactional")]}.*?</tr>', page, re.S).group(0)
    assert "=Your parcel shipped" in row and '"Category">transactional' in row and '"Sent on">Email<' in row
    otp = re.search(rf'{history[("u-1", "otp")]}.*?</tr>', page, re.S).group(0)
    assert '"Sent on">SMS<' in otp and "u-1" in otp and "Code" in otp
    assert carol.get(f"/review/messages/{ids[0]}").status_code == 200  # the link opens the trace

    # Paging with the API's cursors: two pages of 2 and 1, then no next link.
    first = carol.get("/review/messages/search", query_string={"user_id": "u-1", "limit": 2})
    assert ROW.findall(first.get_data(as_text=True)) == ids[:2]
    link = re.search(r'id="next-page" rel="next" href="([^"]+)"', first.get_data(as_text=True)).group(1)
    second = carol.get(link.replace("&amp;", "&"))
    assert ROW.findall(second.get_data(as_text=True)) == ids[2:]
    assert 'id="next-page"' not in second.get_data(as_text=True) and "First page" in text(second)

    # Channel, category, status and days together; a day range that holds nothing.
    r = carol.get("/review/messages/search", query_string={"channel": "sms", "category": "otp"})
    assert set(ROW.findall(r.get_data(as_text=True))) == {history[("u-1", "otp")], history[("u-2", "otp")]}
    r = carol.get("/review/messages/search", query_string={"from": "2001-01-01", "to": "2001-01-31"})
    assert r.status_code == 200 and 'id="no-results"' in r.get_data(as_text=True)


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "2026-13-01"}, "from"),
    ({"to": "99999-01-01"}, "to"),
    ({"to": "0001-01-01"}, "to"),
    ({"from": "2026-03-12", "to": "2026-03-10"}, "from"),
    ({"status": "lost"}, "status"),
    ({"channel": "fax"}, "channel"),
    ({"category": "nope"}, "category"),
    ({"user_id": "u 1"}, "user_id"),
    ({"category": "o" * 5000}, "category"),
    ({"cursor": "AAAA"}, "cursor"),
    ({"limit": "0"}, "limit"),
])
def test_search_page_refuses_bad_filters_naming_the_field(app, people, history, query, field):
    carol = login(app, people["carol"])
    r = carol.get("/review/messages/search", query_string=query)
    assert r.status_code == 422
    page = text(r)
    assert f"Cannot search:</strong> {field}:" in page
    assert 'aria-invalid="true"' in page or field in ("cursor", "limit")
    assert "\x00" not in page


def test_search_page_refuses_nul_naming_the_field(app, people, history):
    """NUL in any query value is refused app-wide before a route runs (errors.reject_nul_in_url);
    on the review pages as a page, on the API as JSON."""
    carol = login(app, people["carol"])
    for name in ("user_id", "category", "to"):
        r = carol.get("/review/messages/search", query_string={name: "x\x00"})
        assert r.status_code == 422 and r.mimetype == "text/html"
        assert f"{name}: must not contain NUL" in text(r) and "\x00" not in text(r)
    r = app.test_client().get("/v1/messages", query_string={"user_id": "x\x00"}, headers=people["carol"])
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "user_id"


def test_search_page_last_day_of_the_range_is_included(app, people, history, clock):
    carol = login(app, people["carol"])
    newest_day = (clock.now - timedelta(hours=18)).date().isoformat()
    r = carol.get("/review/messages/search", query_string={"from": newest_day, "to": newest_day})
    assert history[("u-1", "security_alert")] in ROW.findall(r.get_data(as_text=True))
    assert carol.get("/review/messages/search", query_string={"to": "9000-12-31"}).status_code == 200


def test_search_page_needs_compliance_read(app, make_key):
    reader = login(app, make_key(("policy:approve",), name="approver"))
    assert reader.get("/review/messages/search").status_code == 403


def test_decisions_csv_rows_carry_user_title_and_channels_used(app, people, history, clock):
    import csv
    import io

    carol = login(app, people["carol"])
    r = carol.get("/review/decisions.csv", query_string={"from": "2026-01-01", "to": clock.now.date().isoformat()})
    rows = {row["message_id"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))}
    parcel = rows[history[("u-1", "transactional")]]
    assert parcel["user_id"] == "u-1" and parcel["channels_used"] == "email"
    assert parcel["title"] == "'=Your parcel shipped"  # never read as a formula by a spreadsheet
    alert = rows[history[("u-1", "security_alert")]]
    assert alert["title"] == "New sign-in" and alert["channels_used"].split(";")[0] == "sms"
    assert set(alert["channels_used"].split(";")) <= {"sms", "email", "push", "in_app"}
