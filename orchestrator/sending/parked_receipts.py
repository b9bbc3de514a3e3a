"""Parked receipts (receipts for a provider id we have no attempt for yet) are bounded.

A receipt can legitimately arrive before its send commits, so it is parked and applied
later. But a signed callback for a provider id that never becomes ours would park forever:
the webhook routes ask `admit` before recording a receipt that would park for want of an
attempt (a full table drops it, counted in `orchestrator_receipts_total{outcome="dropped"}`),
and the sweeper calls `age_out_parked` to delete parked rows older than the maximum age and
the oldest beyond the cap.

A signed event refused for a malformed field is kept the same way (`park_rejected`): a parked
row with outcome `rejected`, no provider id (so nothing ever applies it) and a storable copy
of the event in `raw`, under the same cap and age limit."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Row, delete, func, insert, select
from sqlalchemy.orm import Session

from providers.base import RejectedEvent

from .. import metrics
from ..domain.statuses import ReceiptOutcome
from ..storage.models import ReceiptEvent

log = logging.getLogger("orchestrator.receipts")

DROPPED = "dropped"


def parked_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(ReceiptEvent).where(ReceiptEvent.applied.is_(False))) or 0


def admit(session: Session, source: str, found: Row | None, max_rows: int) -> bool:
    """False when the receipt names no attempt we know (`found`: lifecycle.receipts.find) and
    the parked receipts are at the cap; receipts for known attempts (the send-commit race) are
    always admitted."""
    if found is not None or parked_count(session) < max_rows:
        return True
    metrics.RECEIPTS.labels(source, DROPPED).inc()
    log.warning("parked receipts full: receipt for an unknown provider id dropped",
                extra={"event": source, "status": DROPPED})
    return False


def park_rejected(session: Session, source: str, event: RejectedEvent, now: datetime, max_rows: int) -> str:
    """Keeps a signed event refused for a malformed field; returns its outcome: `rejected`,
    `duplicate` (a redelivery of one already kept: not kept twice) or `dropped` (table full).
    The log line names the field and the fault, never a value."""
    kept = session.scalar(select(ReceiptEvent.id).where(ReceiptEvent.source == source,
                                                        ReceiptEvent.provider_event_id == event.event_id).limit(1))
    if kept is not None:
        outcome = ReceiptOutcome.DUPLICATE.value
    elif parked_count(session) >= max_rows:
        outcome = DROPPED
    else:
        outcome = ReceiptOutcome.REJECTED.value
        session.execute(insert(ReceiptEvent).values(
            source=source, provider=event.provider, provider_message_id=None, provider_event_id=event.event_id,
            outcome=outcome, applied=False, raw=event.raw, received_at=now))
    metrics.RECEIPTS.labels(source, outcome).inc()
    log.warning("webhook event refused: %s: %s", event.error.field, event.error.fault.value,
                extra={"event": source, "status": outcome, "error_code": event.error.fault.value})
    return outcome


def age_out_parked(session: Session, now: datetime, max_age: timedelta | float, max_rows: int) -> int:
    """Deletes parked receipts received before `now - max_age`, then the oldest beyond
    `max_rows`. Returns how many were deleted."""
    if not isinstance(max_age, timedelta):
        max_age = timedelta(seconds=max_age)
    parked = ReceiptEvent.applied.is_(False)
    deleted = session.execute(
        delete(ReceiptEvent).where(parked, ReceiptEvent.received_at < now - max_age)
        .execution_options(synchronize_session=False)
    ).rowcount or 0
    excess = parked_count(session) - max_rows
    if excess > 0:
        oldest = select(ReceiptEvent.id).where(parked).order_by(ReceiptEvent.id).limit(excess)
        ids = list(session.scalars(oldest))
        deleted += session.execute(
            delete(ReceiptEvent).where(ReceiptEvent.id.in_(ids)).execution_options(synchronize_session=False)
        ).rowcount or 0
    return deleted
