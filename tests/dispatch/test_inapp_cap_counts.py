"""The in-app counters are read only when in-app is planned (they can only remove it), and
the cap still holds: the fourth in-app message of the day goes elsewhere."""

from __future__ import annotations

from policies import load_default_policy, load_policy


def test_default_policy_conditions_do_not_read_the_counters():
    assert load_default_policy().conditions_read_in_app_counts is False


def test_a_policy_whose_conditions_read_the_counters_is_flagged():
    doc = load_default_policy().document
    rules = [*doc["rules"], {"id": "busy-users-by-email", "title": "t", "description": "d",
                             "cites": ["seed 000"], "when": {"fact": "in_app_count_day", "gte": 2},
                             "then": {"exclude": ["in_app"]}}]
    assert load_policy({**doc, "rules": rules}).conditions_read_in_app_counts is True


def test_the_daily_in_app_cap_still_applies(client, auth, user, send, drain, state):
    user(consents={"sms": True, "email": True, "push": True, "in_app": True})
    cap = load_default_policy().thresholds["in_app_cap_per_day"]
    channels = []
    for i in range(cap + 1):
        assert client.post("/v1/recipients/u-1/presence", headers=auth).status_code in (200, 201, 202)
        route = send(category="feature_announcement", body=f"news {i}", urgency="normal")["route"]
        channels.append([(s["channel"], s["quiet"]) for s in route["steps"]])
        drain()
    assert all(("in_app", False) in c for c in channels[:cap]), channels
    # Over the cap, the user in the app gets a quiet inbox entry (issue #11 defect 7).
    assert channels[cap][0] == ("in_app", True), channels
