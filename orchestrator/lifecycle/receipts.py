"""Receipt ingestion. Every receipt is appended as an event, whatever it says; the
attempt's status only moves forward; engagement sets a timestamp once; a receipt for a
send we have not committed yet is parked and applied when the send commits."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from providers.base import AttemptStatus, Engagement, Receipt, moves_forward

from .. import metrics
from ..domain.statuses import ReceiptOutcome
from ..storage.models import Attempt, ReceiptEvent
from . import address_signals, plan_progress, plans, receipt_events

log = logging.getLogger("orchestrator.receipts")

ENGAGEMENT_COLUMN = {
    Engagement.SEEN: "seen_at",
    Engagement.READ: "read_at",
    Engagement.CLICKED: "clicked_at",
    Engagement.ACKNOWLEDGED: "acknowledged_at",
}
# Engagement implies the steps before it (a read message was seen).
IMPLIED = {
    Engagement.READ: (Engagement.SEEN,),
    Engagement.CLICKED: (Engagement.SEEN, Engagement.READ),
    Engagement.ACKNOWLEDGED: (Engagement.SEEN, Engagement.READ),
}


def _apply(attempt: Attempt, status: str | None, engagement: str | None, at: datetime) -> bool:
    changed = False
    if status:
        new = AttemptStatus(status)
        if moves_forward(AttemptStatus(attempt.status), new):
            attempt.status = new
            if new == AttemptStatus.DELIVERED:
                attempt.delivered_at = at
                metrics.ATTEMPTS_DELIVERED.labels(attempt.channel, attempt.provider or "-").inc()
            changed = True
    if engagement:
        eng = Engagement(engagement)
        for e in (*IMPLIED.get(eng, ()), eng):
            column = ENGAGEMENT_COLUMN[e]
            if getattr(attempt, column) is None:
                setattr(attempt, column, at)
                changed = True
        # Engagement proves delivery even if the carrier never said so.
        if moves_forward(AttemptStatus(attempt.status), AttemptStatus.DELIVERED):
            attempt.status, attempt.delivered_at = AttemptStatus.DELIVERED, attempt.delivered_at or at
            metrics.ATTEMPTS_DELIVERED.labels(attempt.channel, attempt.provider or "-").inc()
            changed = True
    return changed


_ATTEMPT_BY_ID = select(Attempt.id, Attempt.message_id, Attempt.status).where(Attempt.id == bindparam("id"))
_ATTEMPT_BY_PROVIDER_ID = (select(Attempt.id, Attempt.message_id, Attempt.status)
                           .where(Attempt.provider_message_id == bindparam("pmid")).limit(1))


def find(session: Session, receipt: Receipt, attempt_id: str | None = None) -> Row | None:
    """The attempt a receipt is about (its id, message_id and status), by id or by the
    provider's message id; None when we know no such send (yet). A plain column SELECT on the
    session's connection: no need for the ORM's execute path."""
    conn = session.connection()
    if attempt_id:
        return conn.execute(_ATTEMPT_BY_ID, {"id": attempt_id}).first()
    if receipt.provider_message_id:
        return conn.execute(_ATTEMPT_BY_PROVIDER_ID, {"pmid": receipt.provider_message_id}).first()
    return None


_LOOK_UP = object()


def ingest(session: Session, source: str, receipt: Receipt, now: datetime,
           attempt_id: str | None = None, found: Row | None | object = _LOOK_UP) -> tuple[ReceiptOutcome, list[str]]:
    """Records the receipt; returns its outcome and any attempt ids released by it (they are
    announced when the caller's unit of work commits). `found`: what `find` returned, when the
    caller already looked (the webhooks, to admit the receipt): the attempt row is then read
    once more only, with its plan under the message lock (plain rows, lifecycle.plans)."""
    duplicate = receipt_events.seen_before(session.connection(), source, receipt.event_id)
    if found is _LOOK_UP:
        found = find(session, receipt, attempt_id)
    status = receipt.status.value if receipt.status else None
    engagement = receipt.engagement.value if receipt.engagement else None
    released: list[str] = []
    applied = True
    if duplicate:
        outcome = ReceiptOutcome.DUPLICATE
    elif found is None or found.status in (AttemptStatus.QUEUED, AttemptStatus.SENDING):
        outcome, applied = ReceiptOutcome.PARKED, False
    else:
        message = plans.load_rows(session, found.message_id, now)
        attempt = next(a for a in message.attempts if a.id == found.id)
        changed = _apply(attempt, status, engagement, receipt.occurred_at or now)
        outcome = ReceiptOutcome.APPLIED if changed else ReceiptOutcome.IGNORED
        # What the receipt says about the address or the person (dead number, hard bounce,
        # opt-out) applies whether or not it moved the attempt.
        address_signals.apply_receipt(session, attempt, status, receipt.error_code, now)
        if changed:
            released = [a.id for a in plan_progress.advance(message, now, session)]
            plans.save_rows(session, message, now)
    message_id = found.message_id if found else receipt.message_id
    _record_event(session, source, receipt, status, engagement, outcome, applied, now, message_id,
                  found.id if found else None)
    metrics.RECEIPTS.labels(source, outcome).inc()
    log.info("receipt", extra={"message_id": message_id, "attempt_id": found.id if found else None,
                               "event": source, "status": outcome})
    return outcome, released


def ingest_known(session: Session, source: str, receipt: Receipt, attempt_id: str, message_id: str,
                 now: datetime) -> ReceiptOutcome:
    """`ingest` for a receipt whose attempt we know and whose send has committed (the in-app
    stream showing an item), on plain rows (lifecycle.plans) rather than the ORM: the
    same event, the same forward-only rule, the same plan advance, fewer statements."""
    message = plans.load_rows(session, message_id, now)
    attempt = next((a for a in message.attempts if a.id == attempt_id), None)
    status = receipt.status.value if receipt.status else None
    engagement = receipt.engagement.value if receipt.engagement else None
    changed = attempt is not None and _apply(attempt, status, engagement, receipt.occurred_at or now)
    outcome = ReceiptOutcome.APPLIED if changed else ReceiptOutcome.IGNORED
    _record_event(session, source, receipt, status, engagement, outcome, True, now, message_id, attempt_id)
    if changed:
        plan_progress.advance(message, now, session)
        plans.save_rows(session, message, now)
    metrics.RECEIPTS.labels(source, outcome).inc()
    return outcome


def _record_event(session: Session, source: str, receipt: Receipt, status: str | None, engagement: str | None,
                  outcome: ReceiptOutcome, applied: bool, now: datetime, message_id: str | None,
                  attempt_id: str | None) -> None:
    """The receipt's row in `receipt_events`, on the session's connection."""
    receipt_events.append(session.connection(), {
        "source": source, "provider": receipt.provider, "provider_message_id": receipt.provider_message_id,
        "provider_event_id": receipt.event_id, "status": status, "engagement": engagement,
        "error_code": receipt.error_code, "outcome": outcome.value, "applied": applied, "raw": receipt.raw,
        "occurred_at": receipt.occurred_at, "received_at": now, "message_id": message_id, "attempt_id": attempt_id,
    })


def apply_parked(session: Session, attempt: Attempt, now: datetime) -> int:
    """Applies receipts that arrived before this attempt's send was committed."""
    if not attempt.provider_message_id:
        return 0
    if not receipt_events.any_parked(session.connection(), attempt.provider_message_id):
        return 0
    parked = receipt_events.parked_for(session, attempt.provider_message_id)
    for event in parked:
        _apply(attempt, event.status, event.engagement, event.occurred_at or now)
        address_signals.apply_receipt(session, attempt, event.status, event.error_code, now)
        event.applied, event.outcome = True, ReceiptOutcome.APPLIED
        event.attempt_id, event.message_id = attempt.id, attempt.message_id
    return len(parked)


def apply_late_parked(session: Session, now: datetime, limit: int = 500) -> tuple[list[str], int]:
    """Parked receipts whose send has committed since. A receipt can lose the race both
    ways: parked because the send was not committed yet, while the worker's own
    `apply_parked` ran before the receipt was written. The sweeper closes that gap."""
    rows = session.execute(
        select(ReceiptEvent.provider_message_id, Attempt.id, Attempt.message_id)
        .join(Attempt, Attempt.provider_message_id == ReceiptEvent.provider_message_id)
        .where(ReceiptEvent.applied.is_(False),
               Attempt.status.not_in([AttemptStatus.QUEUED, AttemptStatus.SENDING]))
        .limit(limit)
    ).all()
    released: list[str] = []
    applied = 0
    for _, attempt_id, message_id in {(r[0], r[1], r[2]) for r in rows}:
        message = plans.load_orm(session, message_id, now)
        attempt = next(a for a in message.attempts if a.id == attempt_id)
        applied += apply_parked(session, attempt, now)
        released.extend(a.id for a in plan_progress.advance(message, now))
    return released, applied
