"""Reads and writes of the `receipt_events` table (every receipt as it arrived, applied or
not): ingestion's (lifecycle/receipts.py) and erasure's. Statements built once."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from ..storage.models import ReceiptEvent

_DUPLICATE = select(ReceiptEvent.id).where(ReceiptEvent.source == bindparam("source"),
                                           ReceiptEvent.provider_event_id == bindparam("event_id")).limit(1)
_INSERT = insert(ReceiptEvent.__table__)
_PARKED_FOR = (select(ReceiptEvent).where(ReceiptEvent.applied.is_(False),
                                          ReceiptEvent.provider_message_id == bindparam("pmid"))
               .order_by(ReceiptEvent.id))
_ANY_PARKED = (select(ReceiptEvent.id).where(ReceiptEvent.applied.is_(False),
                                             ReceiptEvent.provider_message_id == bindparam("pmid")).limit(1))


def seen_before(conn: Connection, source: str, event_id: str | None) -> bool:
    """Whether this source already sent an event with this provider event id."""
    return conn.execute(_DUPLICATE, {"source": source, "event_id": event_id}).first() is not None


def append(conn: Connection, values: dict) -> None:
    conn.execute(_INSERT, [values])


def any_parked(conn: Connection, provider_message_id: str) -> bool:
    """Nearly always False: a plain statement, so ORM objects load only when some wait."""
    return conn.execute(_ANY_PARKED, {"pmid": provider_message_id}).first() is not None


def parked_for(session: Session, provider_message_id: str) -> list[ReceiptEvent]:
    """Receipts parked for this provider message id, oldest first, as ORM objects (to update)."""
    return list(session.scalars(_PARKED_FOR, {"pmid": provider_message_id}).all())


def redact_raw(session: Session, message_ids: list[str], raw: dict) -> None:
    """Replaces the raw provider payloads (they carry addresses) of these messages' receipts."""
    session.execute(update(ReceiptEvent).where(ReceiptEvent.message_id.in_(message_ids)).values(raw=raw))


def of_message(session: Session, message_id: str) -> list[ReceiptEvent]:
    """The message's receipt timeline, in arrival order."""
    return list(session.scalars(
        select(ReceiptEvent).where(ReceiptEvent.message_id == message_id).order_by(ReceiptEvent.id)
    ).all())
