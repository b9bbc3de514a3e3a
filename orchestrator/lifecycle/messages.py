"""Reads and writes of the `messages` table for request handlers, review views and services
(the plan's own reads and writes are lifecycle/plans.py; the list filters'
query is sending/message_view.py). Statements as they were where they came from."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..domain.statuses import MessageStatus
from ..storage.models import Message
from .transitions import checked

# The order of every message list (API and review search): newest first by (created_at, id);
# a page cursor is that pair (api.pagination.Pager).
LIST_ORDER = (Message.created_at, Message.id)


def created_routes(session: Session, since: datetime, until: datetime) -> Iterable[tuple[datetime, dict | None]]:
    """(created_at, route) of the messages created in [since, until], streamed in batches
    (review/charts.py): iterate inside the session."""
    return session.execute(select(Message.created_at, Message.route)
                           .where(Message.created_at >= since, Message.created_at <= until)
                           .execution_options(yield_per=2000))


# --- erasure of a recipient (recipients/erasure.py) ----------------------------------------

_ERASED_SCHEDULED = checked(MessageStatus.SCHEDULED, MessageStatus.CANCELLED)


def cancel_scheduled_of_user(session: Session, user_id: str, now: datetime, reason: str) -> None:
    """Messages to the user still waiting for their send_at: cancelled (the release claims only
    `scheduled` ones)."""
    session.execute(
        update(Message).where(Message.user_id == user_id, Message.status == MessageStatus.SCHEDULED.value)
        .values(status=_ERASED_SCHEDULED.value, cancelled_at=now, cancelled_by={"reason": reason},
                updated_at=now)
    )


def ids_of_user(session: Session, user_id: str) -> list[str]:
    return list(session.scalars(select(Message.id).where(Message.user_id == user_id).order_by(Message.id)))


def by_ids(session: Session, ids: list[str]) -> Iterable[Message]:
    """The ORM messages (attempts load lazily)."""
    return session.scalars(select(Message).where(Message.id.in_(ids)))
