"""Uncertain sends: an attempt whose send started (the claim, committed before the provider
call, set `send_started_at`) and whose lease ran out with no outcome recorded. Its worker died
mid-send, so the provider may or may not hold the message. The next claim notices (it sets
`uncertain_at`) and calls `resolve` before sending anything:

- a provider that can list what it took (`find_sent`, Twilio) is asked: if it holds a matching
  message whose id no other attempt has, the attempt is recorded as sent with that id and
  nothing is sent again (RECONCILED); if not, the send goes ahead (NOT_SENT: not a duplicate).
  The search covers every message since the send started, however busy the number; one that
  cannot (SearchIncomplete: past the provider's bound on pages) and found none of ours in what
  it read is treated like a provider that cannot tell, below — "not found" there is never
  taken for "not sent";
- any other provider cannot tell (APNs, FCM, SMTP): the policy's `uncertain_sends` action for
  the message's category decides — resend (RESENT: maybe a duplicate, counted in send_count),
  fall back to the plan's next step (FELL_BACK), or fail (FAILED: later fallback steps are
  cancelled too).

A resend is the same attempt again: APNs and FCM carry the attempt id as collapse id (the device
shows one notification, the resend replacing the first), and SMTP the same Message-ID (the
attempt's), so mail systems can tell the copies apart from new mail.

Either way the attempt keeps `uncertain_at`, `uncertain_count` and `uncertain_resolution`
(shown in GET /v1/messages/{id}), and `orchestrator_uncertain_sends_total` counts it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from policies import StepMode
from policies.uncertain import UncertainAction
from providers.base import (
    AttemptStatus,
    Channel,
    Delivery,
    ErrorClass,
    ProviderError,
    SearchIncomplete,
    SendResult,
)

from .. import metrics
from ..domain.statuses import DeliveryOutcome, DispatchErrorCode, UncertainResolution
from ..lifecycle import plans
from ..storage.models import Attempt, Message

log = logging.getLogger("orchestrator.dispatch")

RECHECK_AFTER = timedelta(seconds=30)  # the provider could not be asked: look again after this
KNOWN_BATCH = 500  # provider ids per IN list when looking up which matches other attempts hold


class Resolved:
    """What deliver_attempt does next: `outcome` set → stop with it; otherwise send."""

    def __init__(self, outcome: DeliveryOutcome | None = None) -> None:
        self.outcome = outcome


def _finder(provider) -> Callable[[Delivery, datetime], list[SendResult]] | None:
    return getattr(provider, "find_sent", None)


def resolve(ctx, attempt, delivery: Delivery, token: str, now: datetime,
            record_sent: Callable, finish: Callable, *, expired: bool = False) -> Resolved:
    """Settles the uncertain send of a just-claimed attempt (see the module doc).
    `record_sent`/`finish` are deliver.py's, so a reconciled send is recorded exactly like a
    sent one."""
    if attempt.channel == Channel.IN_APP:
        # In-app is ours: nothing reached anyone until the attempt is recorded sent.
        return _go_ahead(ctx, attempt, token, now, UncertainResolution.NOT_SENT)
    providers = _every_provider(ctx.registry, attempt)
    since = attempt.send_started_at or now
    found: SendResult | None = None
    can_tell = bool(providers) and all(_finder(p) is not None for p in providers)
    if can_tell:
        try:
            incomplete: SearchIncomplete | None = None
            for provider in providers:
                try:
                    results = _finder(provider)(delivery, since)
                except SearchIncomplete as exc:
                    results, incomplete = exc.found, exc  # what it read may still hold ours
                found = _first_unknown(ctx, results)
                if found is not None:
                    break
            if found is None and incomplete is not None:
                # Asking again would read as much and still not cover it: the policy decides.
                log.warning("uncertain send: the provider's search could not cover the window (%s); the policy "
                            "decides", incomplete.detail,
                            extra={"attempt_id": attempt.id, "error_code": DispatchErrorCode.SEARCH_INCOMPLETE})
                can_tell = False
        except ProviderError as exc:
            if exc.error_class == ErrorClass.TRANSIENT and (attempt.deadline_at is None or now < attempt.deadline_at):
                # Cannot ask now: leave it sending under a short lease; the sweeper brings it back.
                log.warning("uncertain send: provider could not be asked; will ask again",
                            extra={"attempt_id": attempt.id, "error_code": exc.code})
                with ctx.db.session() as session:
                    session.execute(update(Attempt).where(Attempt.id == attempt.id, Attempt.leased_by == token)
                                    .values(lease_until=now + RECHECK_AFTER)
                                    .execution_options(synchronize_session=False))
                return Resolved(DeliveryOutcome.RETRY_LATER)
            # It will not answer (refused, or the sending window is over): as if it could not be asked.
            log.warning("uncertain send: provider cannot be asked; the policy decides",
                        extra={"attempt_id": attempt.id, "error_code": exc.code})
            can_tell = False
    if can_tell and found is not None:
        return Resolved(_end(ctx, attempt, token, now, UncertainResolution.RECONCILED,
                             lambda session, a: record_sent(session, a, found, now), finish, DeliveryOutcome.SENT))
    if can_tell:
        return _go_ahead(ctx, attempt, token, now, UncertainResolution.NOT_SENT)

    if expired:
        # Nothing will be sent again whatever the policy says: the caller ends it as expired.
        return _go_ahead(ctx, attempt, token, now, UncertainResolution.FAILED)
    action = _policy_action(ctx, attempt.message_id)
    if action == UncertainAction.RESEND:
        return _go_ahead(ctx, attempt, token, now, UncertainResolution.RESENT)
    resolution = UncertainResolution.FELL_BACK if action == UncertainAction.FALLBACK else UncertainResolution.FAILED

    def end_failed(session, a) -> None:
        a.status, a.error_code, a.error_class = AttemptStatus.FAILED, DispatchErrorCode.UNCERTAIN_SEND, None
        a.error_detail = (f"the send's outcome is unknown (its worker stopped mid-send) and the provider cannot "
                          f"be asked; policy: {action.value}")

    return Resolved(_end(ctx, attempt, token, now, resolution, end_failed, finish, DeliveryOutcome.FAILED,
                         cancel_fallbacks=action == UncertainAction.FAIL))


def _every_provider(registry, attempt) -> list:
    """Every provider the send may have gone through: breakers do not matter here (the one
    that took the message may be open by now)."""
    return registry.pool(attempt.channel, attempt.platform, attempt.provider)


def _first_unknown(ctx, results: list[SendResult]) -> SendResult | None:
    """The newest match whose provider id no attempt has recorded (an identical text sent to
    the same number by another attempt is that attempt's, not ours)."""
    if not results:
        return None
    sids = [r.provider_message_id for r in results]
    known: set[str] = set()
    with ctx.db.session() as session:
        for i in range(0, len(sids), KNOWN_BATCH):  # the same text sent often: many matches
            known.update(session.scalars(select(Attempt.provider_message_id).where(
                Attempt.provider_message_id.in_(sids[i:i + KNOWN_BATCH]))))
    return next((r for r in results if r.provider_message_id not in known), None)


def _policy_action(ctx, message_id: str) -> UncertainAction:
    if ctx.uncertain_action is None:
        return UncertainAction.RESEND
    with ctx.db.session() as session:
        row = session.execute(select(Message.policy_version, Message.category)
                              .where(Message.id == message_id)).one()
    return UncertainAction(ctx.uncertain_action(row.policy_version, row.category))


def _count(attempt_row, channel: str, resolution: UncertainResolution) -> None:
    attempt_row.uncertain_count = (attempt_row.uncertain_count or 0) + 1
    attempt_row.uncertain_resolution = resolution.value
    metrics.UNCERTAIN_SENDS.labels(channel, resolution.value).inc()
    log.warning("uncertain send", extra={"message_id": attempt_row.message_id, "attempt_id": attempt_row.id,
                                         "channel": channel, "outcome": resolution.value})


def _go_ahead(ctx, attempt, token: str, now: datetime, resolution: UncertainResolution) -> Resolved:
    """Records the resolution and lets the send go ahead. A resend after an unknowable send
    counts the earlier one in send_count: it may have reached the person."""
    with ctx.db.session() as session:
        row = session.scalar(select(Attempt).where(Attempt.id == attempt.id, Attempt.leased_by == token))
        if row is None:
            return Resolved(DeliveryOutcome.NOT_CLAIMED)
        _count(row, attempt.channel, resolution)
        if resolution == UncertainResolution.RESENT:
            row.send_count = (row.send_count or 0) + 1
        row.send_started_at = now
    return Resolved()


def _end(ctx, attempt, token: str, now: datetime, resolution: UncertainResolution, apply, finish,
         outcome: DeliveryOutcome, *, cancel_fallbacks: bool = False) -> DeliveryOutcome:
    """One transaction, as deliver_attempt records an outcome: lock the plan, change the
    attempt, advance the plan."""
    with ctx.db.session() as session:
        msg = plans.load_rows(session, attempt.message_id, now)
        current = next(a for a in msg.attempts if a.id == attempt.id)
        if current.status != AttemptStatus.SENDING or current.leased_by != token:
            return DeliveryOutcome.NOT_CLAIMED
        current.lease_until = None
        apply(session, current)
        _count(current, attempt.channel, resolution)
        if cancel_fallbacks:
            for a in msg.attempts:
                if (a.step_index > current.step_index and a.mode == StepMode.FALLBACK and not a.released
                        and a.status == AttemptStatus.QUEUED):
                    a.status = AttemptStatus.CANCELLED
                    a.error_detail = "cancelled: an earlier step's send is uncertain and the policy says fail"
        finish(session, msg, now)
        plans.save_rows(session, msg, now)
    return outcome
