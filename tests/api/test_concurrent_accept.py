"""Many request threads accepting at once: SQLite writers queue on the in-process write lock
(storage.db) instead of failing or stalling in the busy handler; PostgreSQL takes them as
they come. Every request is answered 202 and every message is stored once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from orchestrator.storage.models import Attempt, Message

THREADS, PER_THREAD = 8, 15


def test_concurrent_sends_are_all_accepted_and_stored(app, state, auth):
    client = app.test_client()
    client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com", "phone": "+447400123456"})
    statuses: list[int] = []
    lock = threading.Lock()

    def sender(k: int) -> None:
        c = app.test_client()
        for i in range(PER_THREAD):
            r = c.post("/v1/messages", headers=auth, json={
                "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": f"code {k}-{i}"}})
            with lock:
                statuses.append(r.status_code)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [202] * (THREADS * PER_THREAD)
    with state.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == THREADS * PER_THREAD
        assert s.scalar(select(func.count()).select_from(Attempt)) == 2 * THREADS * PER_THREAD  # sms + email
