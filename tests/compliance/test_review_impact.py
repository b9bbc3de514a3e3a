"""The impact of a draft in the review pages (orchestrator/review/impact.py), through Flask's
test client on SQLite and PostgreSQL: the summary next to the approval form, the full report
with example messages linking to their trace, the `days` field, and a large history computed
in the background with progress."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import DEFAULT_VERSION, draft_text, send
from .test_review_pages import _token, login, text

NEW = "2099-01-01.1"
FIRST_TO_FALLBACK = draft_text(NEW, otp_without_sms=False).replace(
    "      route: [sms, email]\n    reason: one-time codes", "      route: [email, sms]\n    reason: one-time codes", 1)


def _history_and_draft(client, people, document=FIRST_TO_FALLBACK):
    codes = [send(client, people, body=f"Your code is 12345{i}")["id"] for i in range(3)]
    send(client, people, category="transactional", urgency="normal", body="Your parcel shipped")
    r = client.post("/v1/policies", headers=people["alice"], json={"document": document, "reason": "codes by email"})
    assert r.status_code == 201, r.get_json()
    return codes


def test_policy_page_shows_the_impact_next_to_the_approval_form(app, client, people, recipient):
    codes = _history_and_draft(client, people)
    bob = login(app, people["bob"])
    page = text(bob.get(f"/review/policies/{NEW}"))
    panel = page[page.index('id="impact-panel"'):page.index('id="approve-form"')]  # before the form
    assert "3 of 4 messages" in re.sub(r"</?strong>", "", panel)
    assert f"under {NEW} than under the active" in panel and DEFAULT_VERSION in panel
    assert "first channel changed" in panel and "a step's mode changed" in panel
    assert "channel removed" not in panel  # kinds with no message are left out of the summary
    for message_id in codes:
        assert f'href="/review/messages/{message_id}"' in panel
    assert "Computed at 2026-03-10 12:" in panel and f"under policy {NEW} (after)" in panel

    # The active version itself has nothing to compare with.
    page = text(bob.get(f"/review/policies/{DEFAULT_VERSION}"))
    assert 'id="impact-panel"' not in page


def test_full_report_by_kind_category_mix_and_examples(app, client, people, recipient):
    codes = _history_and_draft(client, people)
    carol = login(app, people["carol"])
    r = carol.get(f"/review/policies/{NEW}/impact?days=3")
    assert r.status_code == 200
    page = text(r)
    assert '<caption>Messages whose plan changes, by kind of change' in page
    kinds = page[page.index('id="impact-kinds"'):page.index("</table>", page.index('id="impact-kinds"'))]
    assert re.search(r"first channel changed</th><td>3</td>", kinds)
    assert re.search(r"channel removed</th><td>0</td>", kinds)  # every kind listed in the full report
    categories = page[page.index('id="impact-categories"'):]
    assert re.search(r"<th scope=\"row\">otp</th><td>3</td><td>3</td>", categories)
    first = page[page.index('id="impact-first"'):]
    assert re.search(r"SMS</th><td>3</td><td>0</td>\s*<td>3 fewer</td>", first)  # words, not colour
    examples = page[page.index('id="impact-examples"'):]
    assert "SMS: first → fallback" in examples
    assert all(f'href="/review/messages/{m}"' in examples for m in codes)
    assert 'value="3"' in page  # the days field keeps its value
    # An example link opens the message's trace.
    assert carol.get(f"/review/messages/{codes[0]}").status_code == 200


@pytest.mark.parametrize("days", ["0", "367", "abc", "1.5", "-1", "%00", "9" * 400, "٣"])
def test_a_bad_days_value_is_a_clear_error_naming_the_field(app, client, people, recipient, days):
    _history_and_draft(client, people)
    carol = login(app, people["carol"])
    r = carol.get(f"/review/policies/{NEW}/impact", query_string={"days": days.replace("%00", "\x00")})
    assert r.status_code == 422
    assert "days:" in text(r)
    r = carol.get(f"/review/policies/{NEW}/impact/progress", query_string={"days": days.replace("%00", "\x00")})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "days"


def test_unknown_version_and_retired_or_active_versions(app, client, people, recipient):
    carol = login(app, people["carol"])
    assert carol.get("/review/policies/nope/impact").status_code == 404
    page = text(carol.get(f"/review/policies/{DEFAULT_VERSION}/impact"))
    assert "This is the active version" in page


def test_a_large_history_runs_in_the_background_with_progress(app, client, people, recipient, state):
    app.config["REVIEW_IMPACT_INLINE_MAX"] = 0  # every history counts as large
    codes = _history_and_draft(client, people)
    bob = login(app, people["bob"])
    page = text(bob.get(f"/review/policies/{NEW}/impact"))
    if 'id="impact-summary"' not in page:  # not finished yet: the page shows progress and polls
        assert 'id="impact-progress"' in page and "of 4 messages replayed" in page
        assert 'data-poll="/review/policies/' in page and "impact.js" in page
    deadline = time.monotonic() + 60
    while True:
        progress = bob.get(f"/review/policies/{NEW}/impact/progress?days=7").get_json()
        assert progress["total"] == 4 and progress["version"] == NEW
        assert progress["baseline_version"] == DEFAULT_VERSION
        if progress["status"] == "done":
            break
        assert progress["status"] in ("queued", "running") and time.monotonic() < deadline
        time.sleep(0.05)
    assert progress["done"] == 4 and progress["percent"] == 100
    page = text(bob.get(f"/review/policies/{NEW}/impact"))
    assert "3 of 4 messages" in re.sub(r"</?strong>", "", page)
    assert f'href="/review/messages/{codes[0]}"' in page

    # Cached per (version text, active version, days): another period is another run; asking
    # again recomputes with the latest messages.
    send(client, people, body="Your code is 999999")
    page = text(bob.get(f"/review/policies/{NEW}/impact"))
    assert "3 of 4 messages" in re.sub(r"</?strong>", "", page)
    r = bob.post(f"/review/policies/{NEW}/impact", data={"days": "7", "csrf_token": _token(bob.get(
        f"/review/policies/{NEW}/impact"))})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/review/policies/{NEW}/impact?days=7")
    assert bob.get(r.headers["Location"]).status_code == 200  # the browser follows: a new run starts
    deadline = time.monotonic() + 60
    while bob.get(f"/review/policies/{NEW}/impact/progress?days=7").get_json()["status"] != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert "4 of 5 messages" in re.sub(r"</?strong>", "", text(bob.get(f"/review/policies/{NEW}/impact")))


def test_an_edited_draft_is_computed_again(app, client, people, recipient):
    _history_and_draft(client, people)
    carol = login(app, people["carol"])
    assert "3 of 4 messages" in re.sub(r"</?strong>", "", text(carol.get(f"/review/policies/{NEW}/impact")))
    unchanged = draft_text(NEW, otp_without_sms=False)
    r = client.put(f"/v1/policies/{NEW}", headers=people["alice"], json={"document": unchanged, "reason": "undo"})
    assert r.status_code == 200, r.get_json()
    assert "0 of 4 messages" in re.sub(r"</?strong>", "", text(carol.get(f"/review/policies/{NEW}/impact")))
