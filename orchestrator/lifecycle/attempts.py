"""Reads and writes of the `attempts` table for request handlers and services (the plan's
own reads and writes are lifecycle/plans.py; the inbox's are inapp/inbox.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from providers.base import AttemptStatus

from ..storage.models import Attempt, Message


def acknowledgement_target(session: Session, attempt_id: str) -> Row | None:
    """What the acknowledgement page of a notice shows and records (api/acknowledge.py): the
    attempt's id, message_id, user_id and acknowledged_at, and the message's content."""
    return session.execute(
        select(Attempt.id, Attempt.message_id, Attempt.user_id, Attempt.acknowledged_at, Message.content)
        .join(Message, Message.id == Attempt.message_id).where(Attempt.id == attempt_id)).first()


def channels_used(session: Session, message_ids: list[str]) -> dict[str, list[str]]:
    """Per message id, the channels it went out on (an attempt sent on them), in plan order.
    Ids without a sent attempt are absent."""
    used: dict[str, list[str]] = {}
    if not message_ids:
        return used
    rows = session.execute(select(Attempt.message_id, Attempt.channel)
                           .where(Attempt.message_id.in_(message_ids), Attempt.sent_at.is_not(None))
                           .order_by(Attempt.message_id, Attempt.step_index, Attempt.id))
    for message_id, channel in rows:
        channels = used.setdefault(message_id, [])
        if channel not in channels:
            channels.append(channel)
    return used


# --- erasure of a recipient (recipients/erasure.py) ----------------------------------------

def cancel_queued_of_user(session: Session, user_id: str, now: datetime, error_code: str) -> int:
    """Cancels the user's attempts not yet handed to a worker (the worker's claim is a
    conditional UPDATE on `queued`, so none of them can be sent afterwards); returns how many."""
    return session.execute(
        update(Attempt).where(Attempt.user_id == user_id, Attempt.status == AttemptStatus.QUEUED.value)
        .values(status=AttemptStatus.CANCELLED.value, due_at=None, error_code=error_code, updated_at=now)
    ).rowcount or 0


def forget_addresses_of_user(session: Session, user_id: str) -> None:
    session.execute(update(Attempt).where(Attempt.user_id == user_id).values(address=None))
