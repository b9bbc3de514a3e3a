"""How often the message row and the attempt row are read on the way from POST to the
recorded outcome, and on a Twilio receipt, counted at the cursor (issue #22: each was read
up to three times). A read is a SELECT from the table or an UPDATE of it with RETURNING."""

from __future__ import annotations

import re
from contextlib import contextmanager

from sqlalchemy import event

from tests.conftest import due_ids


def _reads(table: str):
    select = re.compile(r"\s*SELECT\b(?:(?!\bFROM\b).)*\bFROM\s+" + table + r"\b", re.S | re.I)
    returning = re.compile(r"\s*UPDATE\s+" + table + r"\b.*\bRETURNING\b", re.S | re.I)
    return lambda sql: bool(select.match(sql) or returning.match(sql))


READS = {"messages": _reads("messages"), "attempts": _reads("attempts")}


@contextmanager
def counting_reads(engine):
    counts = dict.fromkeys(READS, 0)

    def on_execute(_conn, _cursor, statement, *_args):
        for table, is_read in READS.items():
            counts[table] += is_read(statement)

    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)


def test_the_counter_sees_reads_and_not_writes():
    assert READS["messages"]("SELECT messages.id, messages.status FROM messages WHERE messages.id = ?")
    assert READS["messages"]("UPDATE messages SET updated_at=? WHERE messages.id = ? RETURNING messages.category")
    assert not READS["messages"]("UPDATE messages SET status=? WHERE messages.id = ?")
    assert not READS["messages"]("SELECT attempts.id FROM attempts JOIN messages ON messages.id = attempts.message_id")
    assert READS["attempts"]("SELECT attempts.id FROM attempts JOIN messages ON messages.id = attempts.message_id")


def test_an_sms_from_post_to_outcome_and_its_receipt_read_each_row_as_little_as_they_can(
        state, client, auth, user, twilio, message):
    user()
    with counting_reads(state.db.engine) as sent:
        r = client.post("/v1/messages", headers=auth, json={
            "recipient": {"user_id": "u-1"}, "category": "otp", "content": {"body": "Your code is 123456"}})
        assert r.status_code == 202, r.get_json()
        [attempt_id] = due_ids(state)
        assert state.dispatcher.deliver(attempt_id) == "sent"
    # The claim's lock returns what the send needs; the outcome's lock returns the plan's
    # message columns. Each in its own transaction, with the provider call between them.
    assert sent["messages"] == 2, sent

    sid = next(iter(twilio.messages))
    cb = twilio.status_callback_for(sid, "delivered")
    with counting_reads(state.db.engine) as receipt:
        assert client.post("/webhooks/twilio", data=cb.form, headers=cb.headers).status_code == 204
    # The attempt: found by its provider id (once, for admission and ingestion both), then
    # read with its siblings under the message lock. The message: the lock's RETURNING.
    assert receipt == {"messages": 1, "attempts": 2}, receipt
    assert message(r.get_json()["id"])["status"] == "delivered"
