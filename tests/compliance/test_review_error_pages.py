"""Errors no review view handled — an unknown address under /review, a wrong method, a failure
inside a page — answer with the review's own HTML error page (the reviewer is a person, not an
API client); everywhere else, and on the review's JSON poll, the API's JSON stays."""

from __future__ import annotations

import pytest
from sqlalchemy import text as sql

from .test_review_pages import login, text


def test_unknown_address_and_wrong_method_get_a_page_not_json(app, client, people):
    carol = login(app, people["carol"])
    r = carol.get("/review/no-such-page")
    assert r.status_code == 404 and r.mimetype == "text/html"
    page = text(r)
    assert "<h1>Page not found</h1>" in page and "No review page has this address" in page
    assert 'id="whoami">carol<' in page  # the header's links stay for a signed-in reviewer

    r = carol.get("/review/logout")  # sign-out takes a POST
    assert r.status_code == 405 and r.mimetype == "text/html"
    assert "does not take a GET request" in text(r)
    assert "POST" in r.headers["Allow"]

    r = client.get("/review/nope")  # signed out: the page, with the sign-in link
    assert r.status_code == 404 and 'href="/review/login"' in text(r)

    # The API keeps its JSON, and so does the impact poll a page's script reads.
    r = client.get("/v1/no-such-thing")
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "not_found"
    r = carol.get("/review/policies/x/impact/progress", query_string={"days": "\x00"})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "days"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # drops a table: not the shared PG schema
def test_a_failure_inside_a_review_page_is_a_page_not_json(app, people, state):
    carol = login(app, people["carol"])
    with state.db.engine.begin() as conn:
        conn.execute(sql("DROP TABLE policy_versions"))
    r = carol.get("/review/")
    assert r.status_code == 500 and r.mimetype == "text/html"
    page = text(r)
    assert "<h1>Something went wrong</h1>" in page and "it has been logged" in page
    assert "policy_versions" not in page  # no internals
