"""The delivery path's view of a message's plan, read and written with plain statements.

A worker recording a send needs the message's status and its attempts, changes one attempt
and lets `plan_progress.advance` move the plan on. Doing that through the ORM's identity
map and flush cost about as much as everything else on the path together (profiled:
bench/README.md), so here the rows are loaded into plain objects, `advance` runs on them
unchanged, and only the columns that changed are written back. The sweeper and receipts
keep the ORM path; both follow the same locking rule (message row first)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from ..storage.models import Attempt, Message
from .plan_progress import LOCK_MESSAGE

_ATTEMPT_COLUMNS = tuple(c for c in Attempt.__table__.columns)
_MESSAGE_COLUMNS = (Message.id, Message.api_key_id, Message.user_id, Message.category, Message.status,
                    Message.expires_at, Message.cancelled_at)
# The lock returns the message's columns: one statement fewer than locking, then reading.
_LOCK_AND_READ = LOCK_MESSAGE.returning(*_MESSAGE_COLUMNS)
_ATTEMPTS = (select(*_ATTEMPT_COLUMNS).where(Attempt.message_id == bindparam("message_id"))
             .order_by(Attempt.step_index, Attempt.id))


class Row:
    """A mutable record with the table's column names as attributes."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)
        self._loaded = dict(values)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_loaded" and self._loaded.get(k) != v}


class PlanView(Row):
    attempts: list[Row]


def load(session: Session, message_id: str, now: datetime) -> PlanView:
    """Locks the message row (as plan_progress.lock_message does), then reads it and its
    attempts: current, because nobody else can change them until this transaction ends.
    Plain Core statements on the session's connection (no ORM execute path)."""
    conn = session.connection()
    message = PlanView(dict(conn.execute(_LOCK_AND_READ, {"message_id": message_id, "now": now}).one()._mapping))
    message.attempts = [Row(dict(r._mapping)) for r in conn.execute(_ATTEMPTS, {"message_id": message_id})]
    message._loaded["attempts"] = message.attempts
    return message


_UPDATES: dict[tuple, object] = {}


def _update(model, columns: tuple[str, ...]):
    """One UPDATE statement per (table, set of changed columns), built once: building and
    keying a fresh statement for every write showed up in profiles."""
    key = (model, columns)
    stmt = _UPDATES.get(key)
    if stmt is None:
        stmt = _UPDATES[key] = (update(model).where(model.id == bindparam("row_id"))
                                .values({c: bindparam(c) for c in columns})
                                .execution_options(synchronize_session=False))
    return stmt


def save(session: Session, message: PlanView, now: datetime) -> None:
    """Writes back what changed: one UPDATE per changed attempt, one for the message."""
    conn = session.connection()
    for attempt in message.attempts:
        changed = attempt.changes()
        if changed:
            changed["updated_at"] = now
            conn.execute(_update(Attempt, tuple(sorted(changed))), {**changed, "row_id": attempt.id})
    changed = {k: v for k, v in message.changes().items() if k != "attempts"}
    if changed:
        changed["updated_at"] = now
        conn.execute(_update(Message, tuple(sorted(changed))), {**changed, "row_id": message.id})
