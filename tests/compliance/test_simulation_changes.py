"""What the impact simulation calls a change, through POST /v1/policies/<draft>/simulate, on
SQLite and PostgreSQL: each draft below edits one thing of the shipped default, and the
replayed history (decided under the active default) must show exactly the kinds of change
that edit makes — a move of SMS from first to fallback included, although the set of
channels stays the same."""

from __future__ import annotations

from datetime import timedelta

import pytest

import policies
from orchestrator.compliance import simulation, simulation_workers
from orchestrator.domain.statuses import ChangeKind

from .conftest import DEFAULT_TEXT, DEFAULT_VERSION, draft_text, send

DRAFT = "2099-02-02.1"
OTP_ROUTE = "      route: [sms, email]\n    reason: one-time codes go by SMS, email as fallback"
PAYMENT_SMS = "        - {channel: sms, mode: escalate, after: 2h, unless: read}"
QUIET = '  quiet_hours: ["22:00", "08:00"]'


def _edit(old: str, new: str) -> str:
    text = draft_text(DRAFT, otp_without_sms=False)
    assert old in text
    return text.replace(old, new, 1)


CASES = {
    # SMS first, email fallback -> email first, SMS fallback: same channels, another plan.
    "first_to_fallback": (_edit(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[email, sms]")), "otp", "critical",
                          {ChangeKind.FIRST_CHANNEL_CHANGED, ChangeKind.ORDER_CHANGED, ChangeKind.MODE_CHANGED}),
    "channel_removed": (_edit(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[sms]")), "otp", "critical",
                        {ChangeKind.CHANNEL_REMOVED}),
    # Email, the fallback, becomes the first step.
    "sms_removed_first_changes": (draft_text(DRAFT), "otp", "critical",
                                  {ChangeKind.CHANNEL_REMOVED, ChangeKind.FIRST_CHANNEL_CHANGED,
                                   ChangeKind.MODE_CHANGED}),
    "channel_added": (_edit(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]",
                                                         "[sms, email, {channel: push, mode: parallel}]")),
                      "otp", "critical", {ChangeKind.CHANNEL_ADDED}),
    "mode_only": (_edit(OTP_ROUTE, OTP_ROUTE.replace("[sms, email]", "[sms, {channel: email, mode: parallel}]")),
                  "otp", "critical", {ChangeKind.MODE_CHANGED}),
    "delay_only": (_edit(PAYMENT_SMS, PAYMENT_SMS.replace("2h", "4h")), "payment_failure", "critical",
                   {ChangeKind.DELAY_CHANGED}),
    "newly_suppressed": (_edit(OTP_ROUTE, OTP_ROUTE.replace("route: [sms, email]", "suppress: true")), "otp",
                         "critical", {ChangeKind.NEWLY_SUPPRESSED}),
    # Quiet hours all day: the reminder's push waits (12:00 in London is not quiet by default).
    "newly_deferred": (_edit(QUIET, '  quiet_hours: ["00:00", "23:59"]'), "reminder", "normal",
                       {ChangeKind.NEWLY_DEFERRED}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kind_of_change_is_named_counted_and_exemplified(case, client, people, recipient, clock):
    document, category, urgency, kinds = CASES[case]
    sent = [send(client, people, category=category, urgency=urgency, body=f"Message {i}") for i in range(3)]
    other = send(client, people, category="transactional", urgency="normal", body="Parcel shipped")
    r = client.post("/v1/policies", headers=people["alice"], json={"document": document, "reason": case})
    assert r.status_code == 201, r.get_json()

    r = client.post(f"/v1/policies/{DRAFT}/simulate", headers=people["carol"], json={"days": 7})
    assert r.status_code == 200, r.get_json()
    result = r.get_json()
    assert result["baseline_version"] == DEFAULT_VERSION and result["policy_version"] == DRAFT
    assert result["messages"] == 4 and result["error_count"] == 0
    assert result["changed_count"] == 3, result["changed"]
    by_kind = {row["kind"]: row for row in result["changes_by_kind"]}
    assert set(by_kind) == {k.value for k in ChangeKind}
    assert {k for k, row in by_kind.items() if row["messages"]} == {k.value for k in kinds}
    for kind in kinds:
        assert by_kind[kind]["messages"] == 3
        assert set(by_kind[kind]["examples"]) == {m["id"] for m in sent}
    assert other["id"] not in {c["message_id"] for c in result["changed"]}
    assert result["changes_by_category"][category] == {"messages": 3, "changed": 3,
                                                       "kinds": {k.value: 3 for k in kinds}}
    assert result["changes_by_category"]["transactional"]["changed"] == 0
    change = next(c for c in result["changed"] if c["message_id"] == sent[0]["id"])
    assert set(change["kinds"]) == {k.value for k in kinds} and len(change["changes"]) >= len(kinds)


def test_first_to_fallback_moves_the_first_channel_mix_and_segments_sent_straight_away(
        client, people, recipient, clock):
    for i in range(2):
        send(client, people, body=f"Your code is 00000{i}")
    document = CASES["first_to_fallback"][0]
    assert client.post("/v1/policies", headers=people["alice"], json={"document": document}).status_code == 201
    result = client.post(f"/v1/policies/{DRAFT}/simulate", headers=people["carol"], json={}).get_json()
    mix = {row["channel"]: row["delta"] for row in result["channel_mix"]}
    assert mix["sms"] == 0 and mix["email"] == 0  # the set of channels is the same ...
    first = {row["channel"]: row["delta"] for row in result["first_channel_mix"]}
    assert first["sms"] == -2 and first["email"] == 2  # ... but the message starts on email now
    assert result["changed_count"] == 2
    change = result["changed"][0]
    assert change["before"] == ["sms/first", "email/fallback"] and change["after"] == ["email/first", "sms/fallback"]
    assert "SMS: first → fallback" in change["changes"] and "first channel: SMS → email" in change["changes"]
    seg = result["sms_segments"]
    assert seg["before"] == seg["after"] == 2  # SMS is still on both plans ...
    assert seg["straight_away_before"] == 2 and seg["straight_away_after"] == 0  # ... only as a fallback


def test_the_active_version_against_itself_and_an_unchanged_copy_change_nothing(client, people, recipient, clock):
    send(client, people)
    send(client, people, category="reminder", urgency="normal")
    copy = DEFAULT_TEXT.replace(f'version: "{DEFAULT_VERSION}"', f'version: "{DRAFT}"', 1)
    assert client.post("/v1/policies", headers=people["alice"], json={"document": copy}).status_code == 201
    for version in (DEFAULT_VERSION, DRAFT):
        result = client.post(f"/v1/policies/{version}/simulate", headers=people["carol"], json={}).get_json()
        assert result["messages"] == 2 and result["changed_count"] == 0
        assert all(row["messages"] == 0 for row in result["changes_by_kind"])


def test_worker_processes_find_what_one_process_finds(client, people, state, clock):
    """Split by user over two spawned processes (each user's cap counts replayed whole), then
    merged: the same result as one process, examples and listed changes included."""
    for user in ("u-a", "u-m", "u-z"):
        r = client.put(f"/v1/recipients/{user}", headers=people["backend"], json={
            "email": f"{user}@example.com", "phone": "+44 7400 123456", "timezone": "UTC",
            "consents": {"sms": True, "marketing": True}})
        assert r.status_code in (200, 201), r.get_json()
    for i in range(24):
        category = ["otp", "reminder", "promotion", "transactional"][i % 4]
        r = client.post("/v1/messages", headers=people["backend"], json={
            "recipient": {"user_id": ["u-a", "u-m", "u-z"][i % 3]}, "category": category,
            "urgency": "critical" if category == "otp" else "normal", "content": {"body": f"m{i}"}})
        assert r.status_code == 202, r.get_json()
        clock.advance(minutes=7)
    draft = policies.load_policy(CASES["first_to_fallback"][0])
    active = state.policies.active()
    since = clock() - timedelta(days=1)
    one = simulation.simulate(state.db, draft, baseline=active, since=since, max_changed=3, examples_per_kind=2)
    two = simulation_workers.simulate_auto(state.db, draft, active, since=since, workers=2, min_messages=0,
                                           max_changed=3, examples_per_kind=2)
    assert one.changed_count == 6 and one.messages == 24
    a, b = one.to_dict(), two.to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b
