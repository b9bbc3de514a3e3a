"""The simulation's shortcut for the "before" side: a message the baseline decided, whose
replayed cap counts are the stored ones, takes its stored route instead of a second decision
(compliance/simulation.py). That is only right if the replay of those stored facts under the
version that decided them gives the stored route back — the project's replay guarantee
(sending/decision_replay.py). Here a varied history goes through the real accept path (users
in several zones, with and without phone, devices, consents, preferences and their own quiet
hours; every category, at all hours over four days, enough to pass the cross-channel cap;
half of it decided by an earlier version), and every draft is simulated both ways: the
results must be identical, and the shortcut must have served most messages, so it cannot
silently diverge from the replay it stands for."""

from __future__ import annotations

from datetime import timedelta

import pytest

import policies
from orchestrator.compliance import simulation, simulation_workers
from orchestrator.sending import decision_replay
from orchestrator.storage.models import Message

from .conftest import DEFAULT_TEXT, DEFAULT_VERSION, draft_text, go_live

ACTIVE = "2099-01-01.1"  # goes live half-way: the baseline of every simulation below
QUIET = '  quiet_hours: ["22:00", "08:00"]'
CAP = "then: {cap_messages: {per_day: 6, per_week: 20, over: defer}}"

USERS = {
    "u-1": {"email": "ada@example.com", "phone": "+44 7400 123456", "timezone": "Europe/London",
            "consents": {"sms": True, "email": True, "push": True, "marketing": True},
            "devices": [{"token": "fcm-token-abc", "platform": "fcm"}]},
    "u-2": {"email": "bo@example.com", "timezone": "Asia/Seoul", "consents": {"marketing": False}},
    "u-3": {"phone": "+1 212 555 0100", "timezone": "America/New_York", "quiet_hours": ["20:00", "07:30"],
            "consents": {"sms": True, "marketing": True}},
    "u-4": {"email": "cy@example.com", "phone": "+44 7400 654321", "timezone": "UTC",
            "consents": {"sms": False, "marketing": True},
            "devices": [{"token": "apns-token-xyz", "platform": "apns"}],
            "preferences": {"reminder": {"email": False}, "promotion": {"push": False}}},
    "u-5": {"email": "di@example.com", "timezone": "Australia/Sydney",
            "consents": {"email": True, "push": True, "marketing": True},
            "devices": [{"token": "fcm-token-def", "platform": "fcm"}]},
}
URGENCIES = ("low", "normal", "high", "critical")
BODIES = ("Your code is 123456", "Your parcel has shipped.", "안녕하세요, 새 기기에서 로그인했습니다." * 3, "x" * 400)


ACTIVE_QUIET = '  quiet_hours: ["23:00", "07:00"]'
ACTIVE_TEXT = draft_text(ACTIVE, otp_without_sms=False, text=DEFAULT_TEXT.replace(QUIET, ACTIVE_QUIET, 1))


def _draft(old: str, new: str) -> str:
    text = ACTIVE_TEXT.replace(f'version: "{ACTIVE}"', 'version: "2099-03-03.1"', 1)
    assert old in text
    return text.replace(old, new, 1)


DRAFTS = {
    # Policy-wide: nothing routes alike, every message is replayed under the draft.
    "quiet_hours": _draft(ACTIVE_QUIET, '  quiet_hours: ["21:00", "09:00"]'),
    "lower_cap": _draft(CAP, CAP.replace("per_day: 6", "per_day: 3")),
    # One category: the others route alike (their stored route serves both sides).
    "otp_by_email": _draft("      route: [sms, email]\n", "      route: [email]\n      exclude: sms\n"),
}


@pytest.fixture
def history(client, people, clock, state):
    for user_id, profile in USERS.items():
        r = client.put(f"/v1/recipients/{user_id}", headers=people["backend"], json=profile)
        assert r.status_code in (200, 201), r.get_json()
    categories = sorted(policies.load_default_policy().categories)
    start = clock()
    for i in range(160):
        if i == 80:  # the second half is decided by the version that is active when simulating
            go_live(client, people, ACTIVE, ACTIVE_TEXT)
        user_id = f"u-{1 + (i * 7) % len(USERS)}"
        r = client.post("/v1/messages", headers=people["backend"], json={
            "recipient": {"user_id": user_id}, "category": categories[(i * 5) % len(categories)],
            "urgency": URGENCIES[i % len(URGENCIES)], "content": {"title": "Hi", "body": BODIES[i % len(BODIES)]}})
        assert r.status_code == 202, r.get_json()
        clock.advance(minutes=37 if i % 3 else 7)  # every local hour, and several messages within one
    assert state.policies.active().version == ACTIVE
    return start


def _both_ways(state, draft: policies.Policy, since, **kwargs):
    active = state.policies.active()
    fast = simulation.simulate(state.db, draft, baseline=active, since=since, **kwargs)
    slow = simulation.simulate(state.db, draft, baseline=active, since=since, stored_routes=False, **kwargs)
    a, b = fast.to_dict(), slow.to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b
    assert slow.before_from_stored == 0
    return fast


@pytest.mark.parametrize("name", sorted(DRAFTS))
def test_the_stored_route_gives_the_same_result_as_replaying_the_baseline(name, history, state, clock):
    draft = policies.load_policy(DRAFTS[name])
    result = _both_ways(state, draft, history, max_changed=1000)
    assert result.messages == 160 and result.error_count == 0
    assert result.changed_count > 0
    # Most of the 80 messages the baseline decided took the shortcut (only those whose stored cap
    # counts include messages the baseline would not send differ); none decided earlier did.
    assert 40 <= result.before_from_stored <= 80, result.before_from_stored
    # From the middle of the history on, the stored counts include messages before `since`:
    # those messages are replayed, and the result is still the same.
    later = _both_ways(state, draft, history + timedelta(days=2, hours=3))
    assert 0 < later.before_from_stored < result.before_from_stored
    # Over worker processes (spawned) too.
    two = simulation_workers.simulate_auto(state.db, draft, state.policies.active(), since=history, workers=2,
                                           min_messages=0, max_changed=1000)
    a, b = result.to_dict(), two.to_dict()
    a.pop("seconds"), b.pop("seconds")
    assert a == b and two.before_from_stored == result.before_from_stored


def test_each_stored_route_of_the_baseline_is_what_its_replay_gives(history, state):
    """The guarantee itself, message by message, on the same history."""
    with state.db.session() as session:
        ids = session.query(Message.id, Message.policy_version).all()
        assert {v for _, v in ids} == {DEFAULT_VERSION, ACTIVE}
        for message_id, _ in ids:
            explained = decision_replay.explain_message(session, state.policies, message_id)
            assert explained["matches"], (message_id, explained["differences"])
