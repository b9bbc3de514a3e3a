"""The sweeper makes the database the source of truth: it re-enqueues attempts that are due
and unleased (a lost broker message or a killed worker only delays them), releases held
in-app attempts whose user is back, and ends what can no longer be sent. Several processes
may run it; a row in `leases` lets one at a time do the work."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from providers.base import AttemptStatus

from .. import metrics
from ..lifecycle import plan_progress, plans
from ..lifecycle.receipts import apply_late_parked
from ..sending import confirmations
from ..storage.db import announce
from ..storage.models import Attempt, Lease, Message

log = logging.getLogger("orchestrator.sweeper")

LEASE_NAME = "sweeper"
REENQUEUE_GRACE = timedelta(seconds=5)
RECHECK_WAITING = timedelta(seconds=60)
BATCH = 500
BACKLOG_DRAIN_PER_SECOND = 100   # a conservative worker rate: 1,000 due attempts add 10 s
MAX_EXTRA_GRACE_SECONDS = 60
OVERDUE_AFTER = timedelta(seconds=60)


def acquire_lease(db, holder: str, now: datetime, ttl: timedelta) -> bool:
    with db.session() as session:
        taken = session.execute(
            update(Lease).where(Lease.name == LEASE_NAME, or_(Lease.holder == holder, Lease.until < now))
            .values(holder=holder, until=now + ttl).execution_options(synchronize_session=False)
        ).rowcount
        if taken:
            return True
    try:
        with db.session() as session:
            session.add(Lease(name=LEASE_NAME, holder=holder, until=now + ttl))
        return True
    except IntegrityError:
        return False


def not_sweeping() -> None:
    """Another process holds the lease: this one's backlog gauges say 0, so the holder's
    count is the maximum an operator (or an alert taking `max`) sees, never a stale one."""
    metrics.DUE_BACKLOG.set(0)
    metrics.OVERDUE_ATTEMPTS.set(0)


def release_lease(db, holder: str) -> None:
    """A stopping sweeper hands the lease on at once, instead of after its time-to-live."""
    with db.session() as session:
        session.execute(delete(Lease).where(Lease.name == LEASE_NAME, Lease.holder == holder)
                        .execution_options(synchronize_session=False))


def _end_of_window(a: Attempt, now: datetime) -> tuple[AttemptStatus, str]:
    """Why a released, queued attempt ends when its time is up: `expired` is the message's
    own expiry or an in-app hold's TTL; anything else ran out of its sending window while
    retrying, which is a failure."""
    if a.message.expires_at is not None and a.message.expires_at <= now:
        return AttemptStatus.EXPIRED, "message expired before sending"
    if a.hold_until is not None:
        return AttemptStatus.EXPIRED, "the user did not come back within the in-app hold"
    return AttemptStatus.FAILED, "sending window passed while retrying"


def _end_stale(session, now: datetime, counts: dict[str, int]) -> list[str]:
    """Ends queued attempts whose time is up, under each message's lock (so a worker's
    claim and this never interleave), and lets the plan move on."""
    stale = session.execute(
        select(Attempt.id, Attempt.message_id).join(Message).where(
            Attempt.status == AttemptStatus.QUEUED,
            or_(Message.expires_at <= now, Attempt.deadline_at <= now),
        ).order_by(Attempt.deadline_at).limit(BATCH)
    ).all()
    stale_ids = {row.id for row in stale}
    released: list[str] = []
    for message_id in dict.fromkeys(row.message_id for row in stale):
        message = plans.load_orm(session, message_id, now)  # fresh rows, locked
        message_expired = message.expires_at is not None and message.expires_at <= now
        for a in message.attempts:
            # Unreleased fallbacks are the plan's call (plan_progress.advance), unless the
            # message itself expired.
            if a.id in stale_ids and a.status == AttemptStatus.QUEUED and (a.released or message_expired):
                a.status, a.error_detail = _end_of_window(a, now)
                counts["ended"] += 1
        released.extend(a.id for a in plan_progress.advance(message, now))
        for a in message.attempts:
            if a.status == AttemptStatus.QUEUED and not a.released and a.deadline_at and a.deadline_at <= now:
                # The step before is still working: look again later, not on every pass.
                a.deadline_at = now + RECHECK_WAITING
    return released


def sweep(db, now: datetime, enqueue_many, *, is_pending=None, grace: timedelta = REENQUEUE_GRACE,
          parked_limits: tuple[int, int] | None = None, deadline_seconds: int = 600) -> dict[str, int]:
    """One pass. Returns counts, for logs and tests. What the pass releases is announced by
    its own unit of work; what it finds due and unclaimed is re-announced only when it is
    really lost: not waiting in this process's queue (`is_pending`), and announced longer
    than `grace` ago (a broker may still hold it until then)."""
    counts = {"requeued": 0, "ended": 0, "released": 0, "parked_applied": 0}
    with db.session() as session:
        released = _end_stale(session, now, counts)
        released += confirmations.sweep(session, now, deadline_seconds)  # legal notices: remind, escalate
        late, applied = apply_late_parked(session, now)
        released += late
        counts["parked_applied"] = applied
        if parked_limits is not None:
            # Receipts for sends we never made (forged or stray) must not pile up for ever.
            from ..sending.parked_receipts import age_out_parked

            max_age, max_rows = parked_limits
            age_out_parked(session, now, max_age, max_rows)
        counts["released"] = len(released)

        backlog = session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.released.is_(True), Attempt.status == AttemptStatus.QUEUED, Attempt.due_at <= now)) or 0
        metrics.DUE_BACKLOG.set(backlog)
        # Overdue: due for longer than OVERDUE_AFTER and still unclaimed (queue lag an
        # operator alerts on). Counted only behind a backlog, so an idle pass costs nothing.
        metrics.OVERDUE_ATTEMPTS.set(session.scalar(select(func.count()).select_from(Attempt).where(
            Attempt.released.is_(True), Attempt.status == AttemptStatus.QUEUED,
            Attempt.due_at <= now - OVERDUE_AFTER)) or 0 if backlog else 0)
        # Behind a backlog, an announced attempt may simply not have reached the front of the
        # queue yet: wait longer before announcing it again, so a backlog is not multiplied.
        wait = grace + timedelta(seconds=min(backlog / BACKLOG_DRAIN_PER_SECOND, MAX_EXTRA_GRACE_SECONDS))
        due = select(Attempt.id).where(
            Attempt.released.is_(True),
            Attempt.due_at <= now,
            or_(
                and_(Attempt.status == AttemptStatus.QUEUED,
                     or_(Attempt.enqueued_at.is_(None), Attempt.enqueued_at <= now - wait)),
                and_(Attempt.status == AttemptStatus.SENDING, Attempt.lease_until < now),
            ),
        ).order_by(Attempt.due_at).limit(BATCH)
        ids = [i for i in session.scalars(due) if not (is_pending and is_pending(i))]
    if ids:
        enqueue_many(ids)
    counts["requeued"] = len(ids)
    if any(counts.values()):
        log.info("sweep", extra={"count": counts})
    return counts


def release_held_in_app(db, user_id: str, now: datetime, *, wake: bool = True) -> list[str]:
    """The user is back: held in-app attempts become due now, announced to the workers
    unless the caller delivers them itself (`wake=False`: the inbox fetch, so they are in
    its response; if that fails they are still due and the sweeper announces them)."""
    with db.session() as session:
        held = session.scalars(select(Attempt).where(
            Attempt.user_id == user_id, Attempt.status == AttemptStatus.QUEUED,
            Attempt.hold_until.is_not(None), Attempt.due_at.is_(None), Attempt.hold_until > now,
        )).all()
        for a in held:
            a.due_at = now
            if wake:
                a.enqueued_at = now
        if wake:
            announce(session, [a.id for a in held])
        return [a.id for a in held]
