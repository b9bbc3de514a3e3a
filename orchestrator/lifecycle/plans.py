"""The one place that loads a message's plan (the message row and its attempts) for changing
it, and writes it back. Both ways take the message's row lock first and read after it:
two workers finishing sibling attempts at the same time would otherwise each see the other
still `sending`, and the message would keep a stale status or never release its fallback.
The lock is an UPDATE of `updated_at`: the row lock on PostgreSQL, the write lock on SQLite.

Two shapes of the same plan, for `plan_progress.advance` (which runs unchanged on either):

- `load_rows` / `save_rows`: plain objects (`PlanView`, `Row`) read and written with Core
  statements, only changed columns written back. Used on the hot paths, where the ORM's
  identity map and flush cost about as much as everything else together (profiled:
  bench/README.md): a worker recording a send (dispatch/deliver.py, dispatch/uncertain.py)
  and receipt ingestion (lifecycle/receipts.py `ingest`, `ingest_known`). The statement
  counts are pinned (tests/dispatch/test_hot_path_cost.py, bench/cost.py).
- `load_orm`: the ORM `Message` with its attempts, changes flushed by the session. Used
  where the plan is changed together with other ORM objects or rarely enough that the cost
  does not matter: the sweeper (dispatch/sweeper.py), a send's pre-checks
  (dispatch/deliver.py `_load`), parked receipts (lifecycle/receipts.py `apply_late_parked`,
  which updates `ReceiptEvent` objects), cancellation and the confirmation timers
  (sending/cancellation.py, sending/confirmations.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, load_only, selectinload

from ..storage.models import Attempt, Message

# The lock; built once: expression construction is a real cost on these paths.
LOCK_MESSAGE = (update(Message).where(Message.id == bindparam("message_id")).values(updated_at=bindparam("now"))
                .execution_options(synchronize_session=False))

# --- the ORM shape ---------------------------------------------------------------------------

# Only what advancing needs: the route, content and decision facts (kilobytes of JSON) stay
# in the database.
PLAN_COLUMNS = (Message.id, Message.api_key_id, Message.user_id, Message.category, Message.status,
                Message.expires_at, Message.updated_at, Message.cancelled_at)
_LOAD = (select(Message).where(Message.id == bindparam("message_id"))
         .options(load_only(*PLAN_COLUMNS), selectinload(Message.attempts))
         .execution_options(populate_existing=True))


def load_orm(session: Session, message_id: str, now: datetime) -> Message | None:
    """Locks the message row, then loads it (PLAN_COLUMNS) and its attempts as ORM objects."""
    session.execute(LOCK_MESSAGE, {"message_id": message_id, "now": now})
    return session.scalar(_LOAD, {"message_id": message_id})


# --- the plain-row shape ---------------------------------------------------------------------

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


def load_rows(session: Session, message_id: str, now: datetime) -> PlanView:
    """Locks the message row and reads it in the same statement, then its attempts: plain
    Core statements on the session's connection (no ORM execute path)."""
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


def save_rows(session: Session, message: PlanView, now: datetime) -> None:
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
