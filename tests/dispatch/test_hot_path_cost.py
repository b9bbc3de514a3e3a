"""What one message costs the database on the hot path, counted (not timed): a regression
here is a throughput regression. Accept: the recipient with its devices, the message, its
attempts, one commit. Delivery: the claim (lock returning the content, claim) and one
commit, then the outcome (lock, plan rows, the attempt, the message status) and one commit."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from tests.conftest import due_ids


@contextmanager
def counting(engine):
    counts = {"statements": 0, "commits": 0, "checkouts": 0}

    def on_execute(*_args):
        counts["statements"] += 1

    def on_commit(*_args):
        counts["commits"] += 1

    def on_checkout(*_args):
        counts["checkouts"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    event.listen(engine.pool, "checkout", on_checkout)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)
        event.remove(engine.pool, "checkout", on_checkout)


def test_an_otp_from_post_to_provider_costs_few_statements(state, client, auth, user, twilio):
    user()
    client.post("/v1/messages", headers=auth, json={   # warm the key cache and the policy
        "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "Your code is 000000"}})
    for attempt_id in due_ids(state):
        state.dispatcher.deliver(attempt_id)

    with counting(state.db.engine) as accept:
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "Your code is 123456"}})
    assert r.status_code == 202, r.get_json()
    assert accept == {"statements": 3, "commits": 1, "checkouts": 1}, accept   # recipient+devices, message, attempts

    [attempt_id] = due_ids(state)
    sends_before = len(twilio.messages)
    with counting(state.db.engine) as deliver:
        assert state.dispatcher.deliver(attempt_id) == "sent"
    assert len(twilio.messages) == sends_before + 1
    # claim: lock (returning the content) + UPDATE…RETURNING = 2; outcome: lock (returning the message),
    # attempts, parked receipts, attempt, message status = 5. Two checkouts: no connection is held
    # across the provider call (on PostgreSQL each checkout is a liveness ping, so a connection the
    # server dropped during a long send is replaced before the outcome is recorded).
    assert deliver["commits"] == 2, deliver
    assert deliver["statements"] <= 7, deliver
    assert deliver["checkouts"] == 2, deliver
