import json
from datetime import UTC, datetime, timedelta

import pytest
from policy_test_helpers import NOW, message, recipient

from policies import (
    Device,
    MessageFacts,
    PolicyError,
    RecipientFacts,
    RoutePlan,
    Step,
    decide,
    explain,
    load_policy,
)
from policies.constants import CHANNELS


def rule(rule_id, then, when=None, reason=None):
    r = {"id": rule_id, "title": rule_id, "description": "test rule", "cites": ["test"], "then": then}
    if when is not None:
        r["when"] = when
    if reason is not None:
        r["reason"] = reason
    return r


# ------------------------------------------------------------------ derived facts

@pytest.mark.parametrize(
    ("heartbeat_age", "connected", "presence"),
    [(None, True, "online"), (None, False, "offline"), (90, False, "online"), (91, False, "offline"),
     (0, False, "online"), (3600, True, "online")],
)
def test_presence(policy, heartbeat_age, connected, presence):
    hb = NOW - timedelta(seconds=heartbeat_age) if heartbeat_age is not None else None
    plan = decide(policy, message(), recipient(connected=connected, last_heartbeat_at=hb), NOW)
    assert plan.facts["presence"] == presence


@pytest.mark.parametrize(
    ("idle", "lifecycle"),
    [(timedelta(days=29, hours=23), "active"), (timedelta(days=30), "dormant"),
     (timedelta(days=89), "dormant"), (timedelta(days=90), "churned"), (timedelta(days=-1), "active"),
     (None, "unknown")],
)
def test_lifecycle(policy, idle, lifecycle):
    last = NOW - idle if idle is not None else None
    assert decide(policy, message(), recipient(last_active_at=last), NOW).facts["lifecycle"] == lifecycle


@pytest.mark.parametrize(
    ("now", "tz", "window", "inside", "end"),
    [
        ("2026-03-04T12:59:00Z", "Asia/Seoul", None, False, None),  # 21:59 Seoul
        ("2026-03-04T13:00:00Z", "Asia/Seoul", None, True, "2026-03-04T23:00:00+00:00"),  # 22:00
        ("2026-03-04T22:59:00Z", "Asia/Seoul", None, True, "2026-03-04T23:00:00+00:00"),  # 07:59 next day
        ("2026-03-04T23:00:00Z", "Asia/Seoul", None, False, None),  # 08:00 ends it
        ("2026-03-04T12:00:00Z", "UTC", ("12:00", "13:00"), True, "2026-03-04T13:00:00+00:00"),
        ("2026-03-04T13:00:00Z", "UTC", ("12:00", "13:00"), False, None),
        ("2026-03-04T12:00:00Z", "UTC", ("00:00", "00:00"), False, None),  # empty window
        ("2026-03-08T03:00:00Z", "America/New_York", None, True, "2026-03-08T12:00:00+00:00"),  # DST day
        ("2026-11-01T03:00:00Z", "America/New_York", None, True, "2026-11-01T13:00:00+00:00"),  # DST ends
    ],
)
def test_quiet_hours(policy, now, tz, window, inside, end):
    now_dt = datetime.fromisoformat(now.replace("Z", "+00:00"))
    plan = decide(policy, message(), recipient(timezone=tz, quiet_hours=window), now_dt)
    assert plan.facts["in_quiet_hours"] is inside
    assert plan.facts["quiet_hours_end"] == end


@pytest.mark.parametrize(("delta", "expired"), [(timedelta(0), True), (timedelta(seconds=-1), True),
                                                (timedelta(seconds=1), False)])
def test_expiry_boundary(policy, delta, expired):
    plan = decide(policy, message(expires_at=NOW + delta), recipient(), NOW)
    assert plan.facts["expired"] is expired
    assert plan.suppressed is expired


def test_sms_facts_are_in_the_plan(policy):
    plan = decide(policy, message("otp", title="", body="인" * 71), recipient(), NOW)
    assert plan.facts["sms_encoding"] == "UCS-2"
    assert plan.facts["sms_segments"] == 2
    assert plan.facts["content_bytes"] == 71 * 3


def test_explicit_content_bytes_wins(policy):
    assert decide(policy, message(content_bytes=300_000), recipient(), NOW).facts["content_bytes"] == 300_000


def test_reason_placeholders_are_filled(policy):
    plan = decide(policy, message("otp", title="", body="인" * 202), recipient(), NOW)
    exclusion = plan.excluded_by("sms")
    assert exclusion.rule == "sms-segment-limit"
    assert exclusion.reason == "the text needs 4 UCS-2 SMS segments; the limit is 3"


def test_unknown_category_is_rejected(policy):
    with pytest.raises(ValueError, match="unknown category 'fax_blast'"):
        decide(policy, message("fax_blast"), recipient(), NOW)


def test_naive_now_is_utc(policy):
    naive = NOW.replace(tzinfo=None)
    assert decide(policy, message(), recipient(), naive) == decide(policy, message(), recipient(), NOW)


# ------------------------------------------------------------------ plan shape

def test_every_channel_is_either_used_or_excluded_once(policy):
    for category in policy.categories:
        for connected in (True, False):
            plan = decide(policy, message(category), recipient(connected=connected), NOW)
            excluded = [e.channel for e in plan.excluded]
            assert sorted(excluded + list(plan.channels)) == sorted(CHANNELS)


def test_trace_follows_rule_order(policy):
    plan = decide(policy, message("otp"), recipient(), NOW)
    order = [r.id for r in policy.rules]
    ids = [m.rule_id for m in plan.trace]
    assert ids == sorted(ids, key=order.index)
    assert "otp-by-sms" in ids and "critical-reaches-outside-app" in ids
    assert "route sms" in plan.trace[ids.index("otp-by-sms")].effect


def test_plan_to_dict_is_json_safe(policy):
    plan = decide(policy, message("payment_failure"), recipient(), NOW)
    d = json.loads(json.dumps(plan.to_dict()))
    assert set(d) == {"policy_version", "steps", "excluded", "suppressed", "suppressed_reasons", "trace",
                      "facts", "requires", "confirmation"}
    escalate = d["steps"][-1]
    assert escalate["channel"] == "sms" and escalate["mode"] == "escalate"
    assert escalate["after_seconds"] == 7200 and escalate["unless_status"] == "read"
    assert d["facts"]["available"] == ["in_app", "push", "email", "sms"]


def test_step_to_dict_times():
    step = Step("in_app", "first", hold_ttl=timedelta(hours=72), not_before=NOW, reason="r")
    d = step.to_dict()
    assert d["hold_ttl_seconds"] == 259200
    assert d["not_before"] == "2026-03-04T03:00:00+00:00"
    assert d["after_seconds"] is None


def test_routeplan_channels_property(policy):
    plan = decide(policy, message("otp"), recipient(), NOW)
    assert isinstance(plan, RoutePlan)
    assert plan.channels == ("sms", "email")


# ------------------------------------------------------------------ facts serialisation

def test_facts_round_trip():
    r = recipient(consents={"marketing": True}, quiet_hours=("23:00", "07:00"),
                  devices=(Device("a", "apns", active=False),), last_heartbeat_at=NOW)
    m = message("promotion", expires_at=NOW + timedelta(hours=1), has_rich_media=True)
    assert RecipientFacts.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    assert MessageFacts.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_from_dict_parses_z_and_naive_times():
    r = RecipientFacts.from_dict({"user_id": "u", "last_active_at": "2026-03-01T00:00:00Z",
                                  "last_heartbeat_at": "2026-03-01T00:00:00"})
    assert r.last_active_at == datetime(2026, 3, 1, tzinfo=UTC)
    assert r.last_heartbeat_at.tzinfo is not None


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [(RecipientFacts, {"user_id": "u", "fax": "1"}, "unknown field"),
     (MessageFacts, {"category": "otp", "expires_at": "tomorrow"}, "not an ISO 8601"),
     (RecipientFacts, {"user_id": "u", "quiet_hours": ["22:00"]}, "quiet_hours")],
)
def test_from_dict_rejects_bad_input(cls, data, match):
    with pytest.raises(ValueError, match=match):
        cls.from_dict(data)


def test_recipient_defaults_are_immutable_and_hashable():
    r = RecipientFacts(user_id="u")
    assert dict(r.consents) == {}
    with pytest.raises(TypeError):
        r.consents["sms"] = False  # type: ignore[index]
    assert hash(r) == hash(RecipientFacts(user_id="u"))


def test_explain_matches_decide(policy):
    r, m = recipient(), message("social")
    assert explain(policy, m.to_dict(), r.to_dict(), NOW) == decide(policy, m, r, NOW).to_dict()


def test_missing_consent_uses_policy_defaults(policy):
    plan = decide(policy, message(), recipient(consents={}), NOW)
    assert plan.facts["consent.sms"] is True and plan.facts["consent.marketing"] is False


# ------------------------------------------------------------------ engine floor and effects (custom rules)

def test_floor_excludes_unavailable_channels_even_without_rules(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("noop", {"require_confirmation": ["delivery"]})]))
    plan = decide(policy, message(), recipient(phone=None, devices=(), consents={"email": False}), NOW)
    assert plan.channels == ("in_app",)
    assert {e.channel: e.rule for e in plan.excluded} == {
        "push": "engine:availability", "sms": "engine:availability", "email": "engine:availability",
        "whatsapp": "engine:availability"}
    assert plan.requires == ("delivery_confirmation",)


def test_floor_never_plans_live_in_app_for_offline_user(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("in-app-only", {"route": ["in_app"]})]))
    plan = decide(policy, message(), recipient(connected=False), NOW)
    assert plan.suppressed and plan.steps == ()
    assert plan.excluded_by("in_app").rule == "engine:presence"
    assert plan.suppressed_reasons[0].startswith("engine:no-channel: no usable channel (in_app:")


def test_floor_marketing_without_consent(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("noop", {"route": ["in_app", "email"]})]))
    plan = decide(policy, message("promotion"), recipient(), NOW)
    assert plan.suppressed
    assert plan.excluded_by("email").reason == "no marketing consent for a marketing message"


def test_floor_suppresses_expired_messages(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("noop", {"route": ["in_app"]})]))
    plan = decide(policy, message(expires_at=NOW), recipient(), NOW)
    assert plan.suppressed
    assert plan.suppressed_reasons == ("engine:expired: the message expired before it could be sent",)


def test_floor_critical_never_in_app_alone(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("in-app-only", {"route": ["in_app"]})]))
    plan = decide(policy, message("security_alert"), recipient(), NOW)
    assert plan.suppressed and plan.steps == ()
    assert any(r.startswith("engine:critical-out-of-app") for r in plan.suppressed_reasons)


def test_require_appends_a_channel_missing_from_the_route(doc_with_rules):
    policy = load_policy(doc_with_rules([
        rule("route", {"route": ["in_app"]}),
        rule("need-email", {"require": ["email"]}, reason="archive copy"),
    ]))
    plan = decide(policy, message(), recipient(), NOW)
    assert [(s.channel, s.mode, s.reason) for s in plan.steps] == [
        ("in_app", "first", "route"), ("email", "fallback", "archive copy")]


def test_require_any_picks_first_usable(doc_with_rules):
    policy = load_policy(doc_with_rules([
        rule("route", {"route": ["in_app"]}),
        rule("outside", {"require_any": ["sms", "push"]}),
    ]))
    plan = decide(policy, message(), recipient(phone=None), NOW)
    assert plan.channels == ("in_app", "push")


def test_last_matching_route_wins_and_first_exclusion_reason_sticks(doc_with_rules):
    policy = load_policy(doc_with_rules([
        rule("general", {"route": ["in_app", "push", "email"]}),
        rule("no-push-a", {"exclude": ["push"]}, reason="first reason"),
        rule("no-push-b", {"exclude": ["push"]}, reason="second reason"),
        rule("specific", {"route": ["email", {"channel": "in_app", "mode": "parallel"}]},
             when={"fact": "category", "is": "reminder"}),
    ]))
    plan = decide(policy, message(), recipient(), NOW)
    assert [(s.channel, s.mode) for s in plan.steps] == [("email", "first"), ("in_app", "parallel")]
    assert plan.excluded_by("push").reason == "first reason"
    assert plan.excluded_by("sms").rule == "specific"


def test_mode_of_a_dropped_first_step_passes_on(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("route", {"route": [
        "sms", {"channel": "email", "mode": "parallel"},
        {"channel": "push", "mode": "escalate", "after": "15m", "unless": "seen"}]})]))
    plan = decide(policy, message(), recipient(phone=None), NOW)
    assert [(s.channel, s.mode) for s in plan.steps] == [("email", "first"), ("push", "escalate")]
    assert plan.steps[1].after == timedelta(minutes=15) and plan.steps[1].unless_status == "seen"


def test_provider_pin(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("route", {"route": ["sms", "email"],
                                                        "provider": {"sms": "twilio"}})]))
    plan = decide(policy, message(), recipient(), NOW)
    assert [s.provider for s in plan.steps] == ["twilio", None]


def test_custom_cap(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("cap", {"cap_in_app": {"per_day": 1},
                                                      "route": ["in_app", "email"]})]))
    assert decide(policy, message(), recipient(in_app_count_day=0), NOW).channels == ("in_app", "email")
    plan = decide(policy, message(), recipient(in_app_count_day=1), NOW)
    assert plan.channels == ("email",)
    assert plan.excluded_by("in_app").reason == "in-app cap reached: 1 today (cap 1)"


def test_hold_is_ignored_for_online_users(doc_with_rules):
    policy = load_policy(doc_with_rules([rule("hold", {"route": ["in_app"], "hold_in_app": "1d"})]))
    assert decide(policy, message(), recipient(connected=True), NOW).steps[0].hold_ttl is None
    held = decide(policy, message(), recipient(connected=False), NOW).steps[0]
    assert held.hold_ttl == timedelta(days=1) and held.reason == "hold"


def test_default_quiet_hours_defer_to_utc_end(policy):
    now = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # 23:00 Seoul
    plan = decide(policy, message("social"), recipient(connected=False), now)
    assert plan.steps[0].not_before == datetime(2026, 3, 4, 23, 0, tzinfo=UTC)
    assert plan.steps[1].not_before is None  # email does not interrupt


def test_unknown_urgency_is_rejected(policy):
    with pytest.raises(ValueError, match="unknown urgency 'meh'"):
        decide(policy, message(urgency="meh"), recipient(), NOW)


@pytest.mark.parametrize("window", [("25:00", "08:00"), ("22:00",), ("late", "early")])
def test_unreadable_personal_quiet_hours_fall_back_to_the_policy_default(policy, window):
    now = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # 23:00 in Seoul: inside the default 22:00-08:00
    plan = decide(policy, message(), recipient(quiet_hours=window), now)
    assert plan.facts["in_quiet_hours"] is True


def test_critical_floor_also_applies_after_quiet_hours_drop_steps(doc_with_rules):
    policy = load_policy(doc_with_rules([
        rule("route", {"route": ["in_app", {"channel": "push", "mode": "parallel"}],
                       "defer_in_quiet_hours": ["push"]}),
    ]))
    night = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)  # 23:00 Seoul; quiet hours end 23:00Z
    soon = night + timedelta(hours=1)
    plan = decide(policy, message("security_alert", expires_at=soon), recipient(), night)
    assert plan.suppressed and plan.steps == ()
    assert plan.excluded_by("push").rule == "route"
    assert plan.suppressed_reasons == (
        "engine:critical-out-of-app: a critical message cannot rely on in-app alone",)
    # the same message with time to spare keeps both steps, push deferred
    plan = decide(policy, message("security_alert"), recipient(), night)
    assert [(s.channel, s.not_before) for s in plan.steps] == [
        ("in_app", None), ("push", datetime(2026, 3, 4, 23, 0, tzinfo=UTC))]


def test_over_the_cap_quiet_keeps_in_app_for_a_user_in_the_app(doc_with_rules):
    """Issue #11 defect 7: `over_cap: quiet` turns in-app into a quiet inbox entry for a user
    in the app, instead of sending the next channel; offline users still lose in-app."""
    policy = load_policy(doc_with_rules([rule("cap", {"cap_in_app": {"per_day": 1, "over_cap": "quiet"},
                                                      "route": ["in_app", "email"]})]))
    plan = decide(policy, message(), recipient(in_app_count_day=1, connected=True), NOW)
    assert [(s.channel, s.quiet) for s in plan.steps] == [("in_app", True), ("email", False)]
    assert plan.excluded_by("in_app") is None and "quiet inbox entry" in plan.steps[0].reason
    assert plan.to_dict()["steps"][0]["quiet"] is True
    offline = decide(policy, message(), recipient(in_app_count_day=1, connected=False), NOW)
    assert offline.channels == ("email",)


def test_over_cap_must_be_quiet_or_exclude(doc_with_rules):
    with pytest.raises(PolicyError, match="cap_in_app.over_cap"):
        load_policy(doc_with_rules([rule("cap", {"cap_in_app": {"over_cap": "loud"}})]))


def test_require_confirmation_with_timers(doc_with_rules):
    """Issue #11 defect 3: the policy declares when a legal notice is reminded and escalated."""
    policy = load_policy(doc_with_rules([rule("legal", {"route": ["email"], "require_confirmation": {
        "of": ["delivery", "read"], "remind_after": "2d", "escalate_after": "5d"}})]))
    plan = decide(policy, message(), recipient(), NOW)
    assert plan.requires == ("delivery_confirmation", "read_confirmation")
    assert plan.confirmation == {"remind_after_seconds": 2 * 86400, "escalate_after_seconds": 5 * 86400}
    with pytest.raises(PolicyError, match="escalate_after"):
        load_policy(doc_with_rules([rule("legal", {"require_confirmation": {
            "of": ["read"], "remind_after": "5d", "escalate_after": "2d"}})]))
    with pytest.raises(PolicyError, match="require_confirmation"):
        load_policy(doc_with_rules([rule("legal", {"require_confirmation": {"of": ["read"], "remind_after": "x"}})]))


@pytest.mark.parametrize("value", [10**20, "99999999999w", "400d", "nan", None, [], {"a": 1}])
def test_confirmation_timers_refuse_absurd_durations(doc_with_rules, value):
    with pytest.raises(PolicyError, match="require_confirmation"):
        load_policy(doc_with_rules([rule("legal", {"require_confirmation": {
            "of": ["read"], "remind_after": "1d", "escalate_after": value}})]))
