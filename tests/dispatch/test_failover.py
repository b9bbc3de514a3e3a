"""Two SMS providers: configuration errors and outages move traffic to the backup; a
circuit breaker takes the failing one out for a while and lets it back."""

from __future__ import annotations

import pytest

from tests.dispatch.conftest import SID, TOKEN, attempts, die_mid_send
from tests.fakes.twilio_fake import TwilioFake

BACKUP_SID, BACKUP_TOKEN = "AC" + "2" * 32, "backup-token"


@pytest.fixture
def backup():
    with TwilioFake(BACKUP_SID, BACKUP_TOKEN) as fake:
        yield fake


@pytest.fixture
def app(make_app, twilio, backup):
    return make_app(TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                    TWILIO_API_BASE_URL=twilio.base_url,
                    TWILIO_BACKUP_ACCOUNT_SID=BACKUP_SID, TWILIO_BACKUP_AUTH_TOKEN=BACKUP_TOKEN,
                    TWILIO_BACKUP_FROM_NUMBER="+15005550007", TWILIO_BACKUP_API_BASE_URL=backup.base_url,
                    PUBLIC_BASE_URL="http://localhost")


def test_readyz_lists_both_providers(client):
    providers = client.get("/readyz").get_json()["checks"]["providers"]
    assert providers["twilio"]["mode"] == providers["twilio-backup"]["mode"] == "live"


def test_bad_credentials_fail_over_to_the_backup(user, send, drain, message, twilio, backup):
    user()
    twilio.fail_next(401, 20003)
    sent = send()
    drain()
    attempt = attempts(message, sent["id"], "sms")[0]
    assert attempt["status"] == "sent" and attempt["provider"] == "twilio-backup"
    assert len(backup.messages) == 1 and twilio.messages == {}


def test_outage_opens_the_breaker_then_recovery_lets_it_back(user, send, drain, message, twilio, backup, state):
    user()
    for _ in range(100):
        twilio.fail_next(503)
    ids = [send(body=f"code {i}")["id"] for i in range(8)]
    drain()
    assert all(attempts(message, i, "sms")[0]["provider"] == "twilio-backup" for i in ids)
    breaker = state.providers.breakers["twilio"]
    assert breaker.state == "open"
    primary_calls = len(twilio.requests)
    assert primary_calls < 8 * 3, "an open breaker must stop traffic to the failing provider"
    # While open, new traffic skips the primary entirely.
    send(body="while open")
    drain()
    assert len(twilio.requests) == primary_calls
    # The outage ends and the cooldown passes: one trial goes through and closes the breaker.
    twilio.clear_script()
    real_clock = breaker.clock
    breaker.clock = lambda: real_clock() + breaker.cooldown + 1
    recovered = send(body="after recovery")
    drain()
    assert attempts(message, recovered["id"], "sms")[0]["provider"] == "twilio"
    assert breaker.state == "closed"


def test_every_breaker_open_defers_the_attempt_instead_of_failing_it(user, send, drain, message, twilio, backup,
                                                                      state):
    user()
    for name in ("twilio", "twilio-backup"):
        for _ in range(state.providers.breakers[name].threshold):
            state.providers.breakers[name].record_failure()
    sent = send(body="during the outage")
    state.dispatcher.sweep_once()
    for attempt_id in [a["id"] for a in attempts(message, sent["id"], "sms")]:
        state.dispatcher.deliver(attempt_id)
    attempt = attempts(message, sent["id"], "sms")[0]
    assert attempt["status"] == "queued" and attempt["error"]["code"] == "circuit_open", attempt
    assert twilio.requests == [] and backup.requests == []
def test_an_uncertain_send_is_found_at_the_backup_account(user, send, message, twilio, backup, state, clock):
    """The dead worker's send went to the backup account, whose breaker has opened since; the
    next claim asks every account, open breaker or not, and finds it there: not sent again."""
    user()
    sent = send(body="Your code is 909090")
    attempt_id = attempts(message, sent["id"], "sms")[0]["id"]
    die_mid_send(state, clock, attempt_id, reach_provider=True, provider="twilio-backup")
    for _ in range(10):
        state.providers.breakers["twilio-backup"].record_failure()  # out of rotation by now
    assert state.dispatcher.deliver(attempt_id) == "sent"
    attempt = attempts(message, sent["id"], "sms")[0]
    assert attempt["provider_message_id"] in backup.messages and len(backup.messages) == 1
    assert twilio.messages == {} and attempt["uncertain"]["resolution"] == "reconciled"
    assert attempt["provider"] == "twilio-backup"
