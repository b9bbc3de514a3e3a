"""Properties of decide() over generated facts, for the shipped default policy."""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies import Device, MessageFacts, RecipientFacts, decide, load_default_policy
from policies.constants import CHANNELS, IN_APP

POLICY = load_default_policy()
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE = datetime(2026, 1, 1, tzinfo=UTC)
nows = st.integers(0, 365 * 24 * 60).map(lambda m: BASE + timedelta(minutes=m))
# last activity: often recent (active users are where in-app rules bite), sometimes long ago
offsets = st.one_of(st.integers(-29 * 24 * 3600, 0), st.integers(-200 * 24 * 3600, 0)).map(
    lambda s: timedelta(seconds=s))
texts = st.one_of(
    st.text(alphabet="abcdefghij klmnop€{}[]0123456789.", max_size=500),
    st.text(alphabet="가나다라마바사 인앱😀", max_size=250),
    st.sampled_from(["", "Your code is 123456", "새 로그인이 감지되었습니다"]),
)
SMS_CATEGORIES = ["otp", "invitation", "security_alert", "payment_failure", "system_outage"]
mostly_true = st.sampled_from([True, True, True, False])
ZONES = ["UTC", "Asia/Seoul", "America/New_York", "Europe/Berlin", "Bad/Zone"]


@st.composite
def scenarios(draw):
    now = draw(nows)
    consents = draw(st.dictionaries(st.sampled_from(["in_app", "push", "sms", "email", "marketing"]),
                                    st.booleans(), max_size=5))
    devices = tuple(
        Device(f"tok-{i}", draw(st.sampled_from(["fcm", "apns"])), draw(st.booleans()))
        for i in range(draw(st.integers(0, 2)))
    )
    heartbeat = draw(st.one_of(st.none(), st.integers(0, 600).map(lambda s: now - timedelta(seconds=s))))
    recipient = RecipientFacts(
        user_id="u",
        email=draw(st.sampled_from([None, "a@example.com", "a@example.com"])),
        email_valid=draw(mostly_true),
        phone=draw(st.sampled_from([None, "+821012345678", "+821012345678"])),
        phone_valid=draw(mostly_true),
        devices=devices,
        consents=consents,
        timezone=draw(st.sampled_from(ZONES)),
        quiet_hours=draw(st.sampled_from([None, ("23:00", "07:00"), ("09:00", "17:00"), ("00:00", "00:00")])),
        last_active_at=draw(st.one_of(st.none(), offsets.map(lambda d: now + d))),
        last_heartbeat_at=heartbeat,
        connected=draw(st.booleans()),
        in_app_count_day=draw(st.integers(0, 4)),
        in_app_count_week=draw(st.integers(0, 15)),
    )
    expires = draw(st.one_of(st.none(), st.integers(-3600, 4 * 24 * 3600)))
    expires = now + timedelta(seconds=expires) if expires is not None else None
    message = MessageFacts(
        # half the time a category whose routes use SMS, the channel with the most conditions
        category=draw(st.one_of(st.sampled_from(sorted(POLICY.categories)), st.sampled_from(SMS_CATEGORIES))),
        urgency=draw(st.sampled_from(["low", "normal", "high", "critical"])),
        title=draw(st.sampled_from(["", "Notice"])),
        body=draw(texts),
        expires_at=expires,
        has_rich_media=draw(st.booleans()),
    )
    return message, recipient, now


def consented(recipient, key):
    return recipient.consents.get(key, POLICY.consent_defaults[key])


@SETTINGS
@given(scenarios())
def test_deterministic_and_json_safe(scenario):
    message, recipient, now = scenario
    first = decide(POLICY, message, recipient, now)
    again = decide(POLICY, message, recipient, now)
    assert first == again
    assert json.loads(json.dumps(first.to_dict())) == json.loads(json.dumps(again.to_dict()))


@SETTINGS
@given(scenarios())
def test_plan_is_well_formed(scenario):
    plan = decide(POLICY, *scenario)
    channels = list(plan.channels)
    assert len(set(channels)) == len(channels)
    assert sorted(channels + [e.channel for e in plan.excluded]) == sorted(CHANNELS)
    assert all(e.rule and e.reason for e in plan.excluded)
    if plan.steps:
        assert plan.steps[0].mode == "first"
        assert all(s.mode != "first" for s in plan.steps[1:])
        assert all((s.after is not None) == (s.mode == "escalate") for s in plan.steps)
    # the default policy states every guard itself: the engine's floor never has to step in
    engine_ids = [e.rule for e in plan.excluded if e.rule.startswith("engine:")]
    engine_ids += [r for r in plan.suppressed_reasons if r.startswith("engine:")]
    assert all(x.startswith("engine:no-channel") for x in engine_ids), engine_ids
    # an empty plan is always a suppression with reasons, and a suppression sends nothing
    assert (not plan.steps) == plan.suppressed
    if plan.suppressed:
        assert plan.suppressed_reasons


@SETTINGS
@given(scenarios())
def test_critical_message_never_relies_on_in_app_alone(scenario):
    message, recipient, now = scenario
    plan = decide(POLICY, message, recipient, now)
    if POLICY.categories[message.category]["critical"] and plan.steps:
        assert set(plan.channels) - {IN_APP}


@SETTINGS
@given(scenarios())
def test_no_step_without_address_and_consent(scenario):
    message, recipient, now = scenario
    plan = decide(POLICY, message, recipient, now)
    marketing = POLICY.categories[message.category]["marketing"]
    for step in plan.steps:
        assert consented(recipient, step.channel), step
        if marketing:
            assert consented(recipient, "marketing"), step
        if step.channel == "push":
            assert any(d.active for d in recipient.devices)
        elif step.channel == "sms":
            assert recipient.phone and recipient.phone_valid
        elif step.channel == "email":
            assert recipient.email and recipient.email_valid


@SETTINGS
@given(scenarios())
def test_no_live_in_app_for_offline_user(scenario):
    message, recipient, now = scenario
    plan = decide(POLICY, message, recipient, now)
    if plan.facts["presence"] == "offline":
        for step in plan.steps:
            if step.channel == IN_APP:
                assert step.hold_ttl is not None and step.hold_ttl > timedelta(0)


@SETTINGS
@given(scenarios())
def test_deferred_steps_start_before_expiry(scenario):
    message, recipient, now = scenario
    plan = decide(POLICY, message, recipient, now)
    for step in plan.steps:
        if step.not_before is not None:
            assert step.not_before > now
            assert message.expires_at is None or step.not_before < message.expires_at
        if step.hold_ttl is not None and message.expires_at is not None:
            assert now + step.hold_ttl <= message.expires_at


TIME_FACTS = ("presence", "lifecycle", "in_quiet_hours", "expired")


def shape(plan):
    return ([(s.channel, s.mode, s.after, s.unless_status, s.provider) for s in plan.steps],
            [(e.channel, e.rule) for e in plan.excluded], plan.suppressed, plan.requires)


@SETTINGS
@given(scenarios(), st.integers(-180, 180))
def test_now_only_matters_through_presence_lifecycle_quiet_hours_and_expiry(scenario, minutes):
    message, recipient, now = scenario
    later = now + timedelta(minutes=minutes)
    a = decide(POLICY, message, recipient, now)
    b = decide(POLICY, message, recipient, later)
    if all(a.facts[k] == b.facts[k] for k in TIME_FACTS):
        assert shape(a) == shape(b)
        # and everything the decision saw, apart from time-derived values, is the same
        ignore = set(TIME_FACTS) | {"quiet_hours_end"}
        assert {k: v for k, v in a.facts.items() if k not in ignore} == \
               {k: v for k, v in b.facts.items() if k not in ignore}
