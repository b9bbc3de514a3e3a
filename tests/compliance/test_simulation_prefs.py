"""Simulating the cross-channel frequency cap over a history decided without it: the counts
are replayed from the history, so the messages over the cap show up deferred or dropped."""

from __future__ import annotations

from datetime import timedelta

import pytest

import policies
from orchestrator.compliance import simulation

from .conftest import DEFAULT_TEXT, DEFAULT_VERSION

CAP_SECTION = "  # ---------------------------------------------------------------- cross-channel frequency cap"


@pytest.fixture
def app(make_app, tmp_path):
    assert CAP_SECTION in DEFAULT_TEXT
    before = DEFAULT_TEXT.split(CAP_SECTION)[0].replace(f'version: "{DEFAULT_VERSION}"', 'version: "no-cap.1"', 1)
    path = tmp_path / "no-cap.yaml"
    path.write_text(before, encoding="utf-8")
    return make_app(POLICY_FILE=str(path))


def test_the_cap_shows_in_the_simulated_mix_as_deferrals_and_dropped_marketing(client, auth, state, clock):
    assert state.policies.active().version == "no-cap.1"
    client.put("/v1/recipients/u-1", headers=auth, json={
        "email": "ada@example.com", "timezone": "UTC", "consents": {"marketing": True}})
    start = clock()
    ids = []
    for i, category in enumerate(["reminder"] * 8 + ["promotion"] * 2 + ["security_alert"]):
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": category, "content": {"body": f"n{i}"}})
        assert r.status_code == 202 and r.get_json()["status"] == "accepted"
        ids.append(r.get_json()["id"])
        clock.advance(minutes=5)

    result = simulation.simulate(state.db, policies.load_default_policy(), since=start - timedelta(hours=1))
    assert result.messages == 11 and result.error_count == 0
    mix = {row["channel"]: row for row in result.channel_mix()}
    # Reminders 7 and 8 wait for the next day; both promotions (messages 9 and 10) are dropped.
    assert mix[simulation.DEFERRED]["before"] == 0 and mix[simulation.DEFERRED]["after"] == 2
    assert mix[simulation.SUPPRESSED]["after"] == 2
    assert {c.message_id for c in result.changed} == set(ids[6:10])
    assert result.rules_responsible["frequency-cap-deferral"] == 2
    assert result.rules_responsible["frequency-cap-marketing"] == 2
