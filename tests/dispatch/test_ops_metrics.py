"""The operations metrics move with what happens: provider calls (latency, outcome), the
sweeper's due and overdue counts, circuit-breaker state, status-webhook failures."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from orchestrator.access.auth import create_api_key
from orchestrator.metrics import REGISTRY
from orchestrator.storage.models import StatusCallback
from tests.conftest import due_ids
from tests.fakes.http_receiver import HttpReceiver


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_provider_calls_are_timed_and_counted_by_outcome(user, send, drain, twilio):
    labels = {"channel": "sms", "provider": "twilio"}
    before = {o: sample("orchestrator_provider_sends_total", **labels, outcome=o) for o in ("ok", "transient")}
    timed = sample("orchestrator_provider_send_duration_seconds_count", **labels)
    user()
    twilio.fail_next(503)  # one transient failure, retried in the task, then sent
    send()
    drain()
    assert sample("orchestrator_provider_sends_total", **labels, outcome="transient") == before["transient"] + 1
    assert sample("orchestrator_provider_sends_total", **labels, outcome="ok") == before["ok"] + 1
    assert sample("orchestrator_provider_send_duration_seconds_count", **labels) == timed + 2


def test_the_sweeper_counts_due_and_overdue_attempts(user, send, drain, state, clock):
    user()
    send()
    state.dispatcher.sweep_once()
    assert sample("orchestrator_due_attempts") == len(due_ids(state)) >= 1
    assert sample("orchestrator_overdue_attempts") == 0
    clock.advance(minutes=2)  # nobody claimed them: now overdue
    state.dispatcher.sweep_once()
    assert sample("orchestrator_overdue_attempts") == len(due_ids(state)) >= 1
    drain()
    state.dispatcher.sweep_once()
    assert sample("orchestrator_due_attempts") == sample("orchestrator_overdue_attempts") == 0


def test_breaker_state_is_a_gauge_per_provider(state):
    breaker = state.providers.breakers["twilio"]
    for _ in range(breaker.threshold):
        breaker.record_failure()
    assert sample("orchestrator_circuit_breaker_state", provider="twilio") == 2
    real = breaker.clock
    breaker.clock = lambda: real() + breaker.cooldown + 1
    assert breaker.state == "half_open"
    assert sample("orchestrator_circuit_breaker_state", provider="twilio") == 1
    breaker.record_success()
    assert sample("orchestrator_circuit_breaker_state", provider="twilio") == 0


@pytest.mark.parametrize("answer,outcome", [(503, "retry"), (400, "failed")])
def test_status_webhook_failures_are_counted(client, state, drain, answer, outcome):
    with HttpReceiver() as receiver:
        with state.db.session() as s:
            _, plaintext = create_api_key(s, "backend", ["send", "read", "recipients"], receiver.url)
        auth = {"Authorization": f"Bearer {plaintext}"}
        client.put("/v1/recipients/u-1", headers=auth, json={"phone": "+447400123456"})
        client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high", "content": {"body": "1"}})
        before = sample("orchestrator_status_callback_failures_total", outcome=outcome)
        receiver.answer_next(answer)
        drain()
        with state.db.session() as s:
            first = s.scalars(select(StatusCallback.id).order_by(StatusCallback.id)).first()
        assert state.dispatcher.deliver_callback(first) == {"retry": "retry_later", "failed": "failed"}[outcome]
    assert sample("orchestrator_status_callback_failures_total", outcome=outcome) == before + 1
