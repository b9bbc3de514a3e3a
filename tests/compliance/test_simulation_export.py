"""Impact simulation over messages created through the API, and the decisions CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from click.testing import CliRunner

from orchestrator.cli.main import main

from .conftest import DEFAULT_VERSION, draft_text, send

NEW = "2099-01-01.1"


def _history(client, people, clock):
    sent = []
    for i in range(3):
        sent.append(send(client, people, body=f"Your code is 12345{i}"))
        clock.advance(hours=1)
    sent.append(send(client, people, category="transactional", urgency="normal", body="Your parcel shipped"))
    return sent


def test_simulation_reports_channel_mix_change_and_rules(client, people, recipient, clock):
    sent = _history(client, people, clock)
    otp_ids = {m["id"] for m in sent[:3]}
    assert client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW)}).status_code == 201

    r = client.post(f"/v1/policies/{NEW}/simulate", headers=people["carol"], json={"days": 7})
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    assert result["messages"] == 4 and result["error_count"] == 0
    mix = {row["channel"]: row for row in result["channel_mix"]}
    assert mix["sms"]["before"] >= 3 and mix["sms"]["after"] == mix["sms"]["before"] - 3
    assert mix["sms"]["delta"] == -3
    assert result["changed_count"] == 3
    assert {c["message_id"] for c in result["changed"]} == otp_ids
    change = result["changed"][0]
    assert change["before"][0] == "sms/first" and change["after"] == ["email/first"]
    assert "otp-by-sms" in change["rules"] and change["newly_excluded"]["sms"] == "otp-by-sms"
    assert result["rules_responsible"]["otp-by-sms"] == 3

    # The active policy changes nothing; a posted document can be simulated without a draft.
    same = client.post(f"/v1/policies/{DEFAULT_VERSION}/simulate", headers=people["carol"], json={}).get_json()
    assert same["changed_count"] == 0 and same["messages"] == 4
    posted = client.post("/v1/policies/simulate", headers=people["carol"],
                         json={"document": draft_text("2099-09-09.1"), "days": 1})
    assert posted.status_code == 200 and posted.get_json()["changed_count"] == 3

    # Window: messages older than `days` are not replayed.
    clock.advance(days=2)
    assert client.post(f"/v1/policies/{NEW}/simulate", headers=people["carol"],
                       json={"days": 1}).get_json()["messages"] == 0
    r = client.post(f"/v1/policies/{NEW}/simulate", headers=people["carol"], json={"days": 0})
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "days"


def test_simulate_cli_prints_table_and_changed_count(client, people, recipient, clock, database_url, tmp_path):
    _history(client, people, clock)
    draft = tmp_path / "draft.yaml"
    draft.write_text(draft_text(NEW), encoding="utf-8")
    # The CLI reads the wall clock: the test history is in 2026-03, so look back far enough.
    days = 366
    r = CliRunner().invoke(main, ["policy", "simulate", str(draft), "--days", str(days)],
                           env={"DATABASE_URL": database_url})
    assert r.exit_code == 0, r.output
    assert "channel" in r.output and "before" in r.output
    assert "changed: 3 messages" in r.output
    sms = next(line for line in r.output.splitlines() if line.startswith("sms"))
    assert sms.split()[-1] == "-3"


def test_decisions_csv_has_header_and_rows(client, people, recipient, clock, drain):
    sent = _history(client, people, clock)
    drain()  # the attempts go out (sandbox providers): channels_used says on which channels
    start = (clock.now - timedelta(days=1)).isoformat()
    r = client.get("/v1/decisions.csv", query_string={"from": start}, headers=people["carol"])
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert len(rows) == len(sent)
    by_id = {row["message_id"]: row for row in rows}
    otp = by_id[sent[0]["id"]]
    assert otp["category"] == "otp" and otp["policy_version"] == DEFAULT_VERSION
    assert otp["channels"].startswith("sms/first")
    assert otp["user_id"] == "u-1" and otp["title"] == "Code"
    # Planned SMS first, but the drain runs hours later: the code's SMS step failed (too late) and the
    # email fallback is what went out. channels_used says what was sent, channels what was planned.
    assert otp["channels_used"] == "email"
    assert by_id[sent[3]["id"]]["channels_used"] == "email"  # transactional: email (in-app needs a session)
    assert otp["excluded"] and all(":" in part for part in otp["excluded"].split(";"))
    r = client.get("/v1/decisions.csv?from=yesterday", headers=people["carol"])
    assert r.status_code == 422 and r.get_json()["error"]["field"] == "from"
    empty = client.get("/v1/decisions.csv?from=2020-01-01&to=2020-01-02", headers=people["carol"])
    assert empty.get_data(as_text=True).splitlines()[0] == (
        "message_id,created_at,user_id,category,urgency,status,title,policy_version,channels,channels_used,"
        "excluded,suppressed,suppressed_reasons")
    assert len(empty.get_data(as_text=True).splitlines()) == 1


def test_edited_draft_is_simulated_and_activated_with_its_current_text(client, people, recipient, clock):
    _history(client, people, clock)
    assert client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW)}).status_code == 201
    first = client.post(f"/v1/policies/{NEW}/simulate", headers=people["carol"], json={}).get_json()
    assert first["changed_count"] == 3
    # alice edits the draft back to the default routing: nothing would change any more.
    unchanged = draft_text(NEW, otp_without_sms=False)
    assert client.put(f"/v1/policies/{NEW}", headers=people["alice"], json={"document": unchanged}).status_code == 200
    again = client.post(f"/v1/policies/{NEW}/simulate", headers=people["carol"], json={}).get_json()
    assert again["changed_count"] == 0
    assert client.post(f"/v1/policies/{NEW}/approve", headers=people["bob"], json={}).status_code == 200
    assert client.post(f"/v1/policies/{NEW}/activate", headers=people["bob"], json={}).status_code == 200
    after = send(client, people)
    assert after["route"]["policy_version"] == NEW and after["route"]["steps"][0]["channel"] == "sms"
