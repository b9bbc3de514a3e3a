"""Reads and writes of the `messages` table for request handlers, review views and services
(the plan's own reads and writes are lifecycle/plans.py; how a message is shown is
sending/message_view.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, exists, select, update
from sqlalchemy.orm import Session, selectinload

from ..domain.statuses import MessageStatus
from ..storage.models import Attempt, IdempotencyRecord, Message
from .transitions import checked

# The order of every message list (API and review search): newest first by (created_at, id);
# a page cursor is that pair (api.pagination.Pager).
LIST_ORDER = (Message.created_at, Message.id)


def load_with_attempts(session: Session, message_id: str) -> Message | None:
    return session.scalar(
        select(Message).where(Message.id == message_id).options(selectinload(Message.attempts))
    )


@dataclass(frozen=True)
class ListFilters:
    api_key_id: str | None = None  # only this key's messages (None: every key's, for compliance/admin)
    statuses: tuple[str, ...] = ()
    category: str | None = None
    user_id: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None    # exclusive
    idempotency_key: str | None = None
    channel: str | None = None  # only messages that went out on this channel (an attempt sent on it)


LIST_COLUMNS = (Message.id, Message.status, Message.user_id, Message.category, Message.urgency,
                Message.created_at, Message.updated_at, Message.send_at, Message.expires_at,
                Message.policy_version, Message.cancelled_at, Message.cancelled_by, Message.meta)


def list_query(f: ListFilters):
    """Messages matching the filters (the caller adds order and paging)."""
    query = select(*LIST_COLUMNS)
    if f.api_key_id is not None:
        query = query.where(Message.api_key_id == f.api_key_id)
    if f.statuses:
        query = query.where(Message.status.in_(f.statuses))
    if f.category is not None:
        query = query.where(Message.category == f.category)
    if f.user_id is not None:
        query = query.where(Message.user_id == f.user_id)
    if f.created_from is not None:
        query = query.where(Message.created_at >= f.created_from)
    if f.created_to is not None:
        query = query.where(Message.created_at < f.created_to)
    if f.channel is not None:
        # Correlated EXISTS: per candidate message one probe of ix_attempts_message_id.
        query = query.where(exists().where(Attempt.message_id == Message.id, Attempt.channel == f.channel,
                                           Attempt.sent_at.is_not(None)))
    if f.idempotency_key is not None:
        query = query.where(Message.id.in_(select(IdempotencyRecord.message_id).where(
            IdempotencyRecord.key == f.idempotency_key, IdempotencyRecord.api_key_id == Message.api_key_id)))
    return query


def list_rows(session: Session, filters: ListFilters, paged: Callable[[Select], Select]) -> list[Row]:
    """One page of `list_query(filters)`: `paged` adds the order and the page (api.pagination.Pager)."""
    return list(session.execute(paged(list_query(filters))).all())


def contents(session: Session, message_ids: list[str]) -> dict[str, Any]:
    """Per message id, its stored content (emptied when the recipient was erased)."""
    if not message_ids:
        return {}
    rows = session.execute(select(Message.id, Message.content).where(Message.id.in_(message_ids)))
    return {message_id: content for message_id, content in rows}


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
