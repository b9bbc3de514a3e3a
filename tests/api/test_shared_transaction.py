"""Sends written together (sending.messages.write_sends, what the group commit runs for
concurrent requests) behave as if each had its own transaction: a duplicate Idempotency-Key
fails only its own send, and a second send to one user is counted against the first."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from orchestrator.schemas import SendRequest
from orchestrator.sending.messages import PendingSend, write_sends
from orchestrator.storage.models import ApiKey, IdempotencyRecord, Message


def pending(state, user: str, category: str = "otp", key: str | None = None) -> PendingSend:
    req = SendRequest.model_validate({"recipient": {"user_id": user}, "category": category,
                                      "content": {"title": "Hi", "body": f"{category} for {user}"}})
    with state.db.session() as s:
        key_id = s.scalar(select(ApiKey.id))
    return PendingSend(state.policies.active(), req, key_id, state.clock(), state.settings.attempt_deadline_seconds,
                       idempotency_key=key, digest="d" if key else "")


def count(state, model, **where) -> int:
    with state.db.session() as s:
        return s.scalar(select(func.count()).select_from(model).filter_by(**where))


def test_a_duplicate_idempotency_key_fails_only_its_own_send(client, auth, state):
    for user in ("u-1", "u-2", "u-3"):
        client.put(f"/v1/recipients/{user}", headers=auth, json={"phone": "+447400123456"})
    outcomes = write_sends(state.db, [pending(state, "u-1", key="k-1"), pending(state, "u-2", key="k-1"),
                                      pending(state, "u-3")])
    assert isinstance(outcomes[1], IntegrityError)
    first, third = outcomes[0], outcomes[2]
    assert first.body["status"] == third.body["status"] == "accepted"
    assert count(state, Message) == 2
    assert count(state, Message, id=first.body["id"]) == count(state, Message, id=third.body["id"]) == 1
    assert count(state, IdempotencyRecord, key="k-1", message_id=first.body["id"]) == 1


def test_a_second_send_to_one_user_in_the_same_transaction_counts_against_the_cap(client, auth, state):
    client.put("/v1/recipients/u-c", headers=auth, json={
        "email": "c@example.com", "timezone": "UTC", "consents": {"marketing": True}})
    for i in range(5):  # the daily cap is 6
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-c"}, "category": "promotion", "content": {"title": "t", "body": f"{i}"}})
        assert r.get_json()["status"] == "accepted"
    sixth, seventh = write_sends(state.db, [pending(state, "u-c", "promotion"), pending(state, "u-c", "promotion")])
    assert sixth.body["status"] == "accepted"
    assert seventh.body["status"] == "suppressed"
    assert any("frequency-cap-marketing" in r for r in seventh.body["route"]["suppressed_reasons"])
