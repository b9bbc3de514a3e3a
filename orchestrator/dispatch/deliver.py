"""Delivering one attempt. The task body both brokers run:

1. claim the attempt with a conditional UPDATE (a redelivered task finds nothing to claim);
2. check expiry and, for escalations, whether the watched status already arrived;
3. send through the provider candidates, retrying transient errors briefly in-task
   (tenacity) and then durably, by moving `due_at` forward;
4. record the outcome and advance the plan (fallback, escalation, message status).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, case, exists, or_, select, update
from sqlalchemy.orm import Session
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from policies import StepMode
from providers.base import AttemptStatus, Channel, Delivery, ErrorClass, ProviderError, SendResult

from .. import metrics
from ..content.channels import for_channel
from ..domain.statuses import DeliveryOutcome, DispatchErrorCode
from ..lifecycle import address_signals, plan_progress, plans
from ..lifecycle.receipts import apply_parked
from ..logs import MESSAGE_ID
from ..storage.db import after_commit
from ..storage.models import Attempt, Confirmation, Message
from . import uncertain
from .backoff import backoff_seconds
from .provider_calls import observed_send

log = logging.getLogger("orchestrator.dispatch")

IN_TASK_TRIES = 3
MAX_BACKOFF_SECONDS = 300


@dataclass
class DeliveryContext:
    db: object
    registry: object
    clock: object
    lease_seconds: int
    worker_id: str
    notify_inapp: object = None  # (user_id) -> None: wakes the user's open in-app streams
    uncertain_action: object = None  # (policy_version, category) -> policies.uncertain.UncertainAction
    decorate_email: object = None  # (Delivery) -> Delivery: the acknowledgement link (sending/confirmations)
    unsubscribe_url: object = None  # (user_id, category) -> one-click URL | None (recipients/unsubscribe)


_CLAIMED = (Attempt.id, Attempt.message_id, Attempt.user_id, Attempt.channel, Attempt.mode, Attempt.provider,
            Attempt.address, Attempt.platform, Attempt.due_at, Attempt.deadline_at, Attempt.send_started_at,
            Attempt.uncertain_at)
_FOR_SEND = (Message.category, Message.urgency, Message.content, Message.expires_at, Message.marketing,
             # A notice that requires read confirmation: its email carries the acknowledgement link.
             exists().where(Confirmation.message_id == Message.id).correlate(Message).label("confirmable"))


# Built once: constructing SQL expressions costs more than running them on this path.
_LOCK_BY_ATTEMPT = (
    update(Message)
    .where(Message.id == select(Attempt.message_id).where(Attempt.id == bindparam("attempt_id")).scalar_subquery())
    .values(updated_at=bindparam("now")).execution_options(synchronize_session=False)
)
_CLAIM = (
    update(Attempt)
    .where(
        Attempt.id == bindparam("attempt_id"),
        Attempt.released.is_(True),
        Attempt.due_at <= bindparam("now"),
        or_(
            Attempt.status == AttemptStatus.QUEUED,
            and_(Attempt.status == AttemptStatus.SENDING, Attempt.lease_until < bindparam("now")),
        ),
    )
    .values(status=AttemptStatus.SENDING, lease_until=bindparam("lease_until"), leased_by=bindparam("token"),
            tries=Attempt.tries + 1,
            # Committed before the provider call. Taking over a `sending` attempt (its lease ran
            # out) means that send's outcome is unknown: keep when it started, mark it uncertain.
            send_started_at=case((Attempt.status == AttemptStatus.SENDING, Attempt.send_started_at),
                                 else_=bindparam("now")),
            uncertain_at=case((Attempt.status == AttemptStatus.SENDING, bindparam("now")),
                              else_=Attempt.uncertain_at))
    .returning(*_CLAIMED)
    .execution_options(synchronize_session=False)
)
# The message lock returns what the send needs of the message: one statement fewer per
# attempt. (SQLite's RETURNING drops table qualifiers: `message_id = id` inside the EXISTS
# resolves to confirmations.message_id = messages.id because confirmations has no `id`.)
_LOCK_FOR_SEND = _LOCK_BY_ATTEMPT.returning(*_FOR_SEND)


def claim(session: Session, attempt_id: str, now: datetime, lease_seconds: int, worker_id: str):
    """Conditional UPDATE … RETURNING: only a queued, released, due attempt, or one whose
    lease ran out (its worker died mid-send), can be claimed; exactly one claimer wins and
    gets a token of its own, with the attempt's columns the send needs. The message row is
    locked first, so a claim never interleaves with a plan change (sweeper, receipt) that
    could cancel or end the same attempt. Returns (token, attempt row) or None."""
    claimed = claim_for_send(session, attempt_id, now, lease_seconds, worker_id)
    return claimed[:2] if claimed is not None else None


def claim_for_send(session: Session, attempt_id: str, now: datetime, lease_seconds: int, worker_id: str):
    """`claim`, plus the message's columns the send needs, returned by the message lock
    itself: (token, attempt row, message row) or None. Two statements. Run on the
    session's connection (plain Core statements): the ORM's execute path (bulk-update
    handling, cache keys) cost more than the statements themselves."""
    conn = session.connection()
    message = conn.execute(_LOCK_FOR_SEND, {"attempt_id": attempt_id, "now": now}).first()
    if message is None:
        return None
    token = f"{worker_id}:{uuid.uuid4().hex[:12]}"
    row = conn.execute(_CLAIM, {"attempt_id": attempt_id, "now": now, "token": token,
                                "lease_until": now + timedelta(seconds=lease_seconds)}).first()
    return (token, row, message) if row is not None else None


def _load(session: Session, attempt_id: str, message_id: str, now: datetime) -> tuple[Attempt, Message]:
    message = plans.load_orm(session, message_id, now)
    attempt = next(a for a in message.attempts if a.id == attempt_id)
    return attempt, message


def build_delivery(attempt, message, content: dict, status_callback_url: str | None = None) -> Delivery:
    """`attempt` and `message` are rows or objects with the claimed columns."""
    content = for_channel(content, attempt.channel)  # this channel's own text (content/channels.py)
    return Delivery(
        message_id=attempt.message_id, attempt_id=attempt.id, channel=Channel(attempt.channel),
        to=attempt.address or attempt.user_id, title=content.get("title", ""), body=content.get("body", ""),
        html=content.get("html"), data=dict(content.get("data", {})), category=message.category,
        urgency=message.urgency, expires_at=message.expires_at, platform=attempt.platform,
        image_url=content.get("image_url"), action_url=content.get("action_url"),
        marketing=bool(message.marketing), status_callback_url=status_callback_url,
        reply_to=content.get("reply_to"),
    )


def deliver_attempt(ctx: DeliveryContext, attempt_id: str, public_base_url: str = "") -> DeliveryOutcome:
    """Claim (one transaction), send (no transaction open), record and advance the plan
    (one transaction). Expired messages and escalations take the careful path: their
    outcome depends on the rest of the plan, read under the message lock."""
    now = ctx.clock()
    with ctx.db.session() as session:
        claimed = claim_for_send(session, attempt_id, now, ctx.lease_seconds, ctx.worker_id)
        if claimed is None:
            return DeliveryOutcome.NOT_CLAIMED
        token, attempt, message = claimed
        MESSAGE_ID.set(attempt.message_id)  # for this task's log lines (Dispatcher.deliver scopes it)
    if attempt.due_at:
        metrics.QUEUE_LAG.observe(max((now - attempt.due_at).total_seconds(), 0))
    callback_url = ctx.registry.status_callback_url(attempt.channel, public_base_url)
    delivery = build_delivery(attempt, message, message.content, callback_url)
    if message.confirmable and attempt.channel == Channel.EMAIL and ctx.decorate_email is not None:
        delivery = ctx.decorate_email(delivery)
    if delivery.marketing and attempt.channel == Channel.EMAIL and ctx.unsubscribe_url is not None:
        delivery = replace(delivery, unsubscribe_url=ctx.unsubscribe_url(attempt.user_id, message.category))
    if attempt.uncertain_at is not None and attempt.uncertain_at == now:
        # This claim took over a send whose worker died mid-call: settle it before sending.
        settled = uncertain.resolve(ctx, attempt, delivery, token, now, _record_sent, _finish,
                                    expired=message.expires_at is not None and message.expires_at <= now)
        if settled.outcome is not None:
            return settled.outcome
    if attempt.mode == StepMode.ESCALATE or (message.expires_at is not None and message.expires_at <= now):
        with ctx.db.session() as session:
            full, msg = _load(session, attempt_id, attempt.message_id, now)
            if full.status != AttemptStatus.SENDING or full.leased_by != token:
                return DeliveryOutcome.NOT_CLAIMED
            early = _precheck(full, msg, now)
            if early:
                full.lease_until = None
                _finish(session, msg, now)
                return early
    # The provider call happens outside any transaction: no lock is held across the network.
    result, error, provider_name = _send(ctx, attempt, delivery, now)
    with ctx.db.session() as session:
        done = ctx.clock()
        msg = plans.load_rows(session, attempt.message_id, done)
        current = next(a for a in msg.attempts if a.id == attempt_id)
        if current.status != AttemptStatus.SENDING or current.leased_by != token:
            # Our lease expired and another worker took over; its outcome wins.
            log.warning("lease lost during send", extra={"attempt_id": attempt_id})
            return DeliveryOutcome.NOT_CLAIMED
        current.provider = provider_name or current.provider
        current.lease_until = None
        if result is not None:
            _record_sent(session, current, result, done)
            outcome = DeliveryOutcome.SENT
            if current.channel == Channel.IN_APP and ctx.notify_inapp is not None:
                user_id = current.user_id
                after_commit(session, lambda: ctx.notify_inapp(user_id))
        else:
            outcome = _record_error(session, current, msg, error, done)
        _finish(session, msg, done)
        plans.save_rows(session, msg, done)
    return outcome


def _precheck(attempt: Attempt, message: Message, now: datetime) -> DeliveryOutcome | None:
    if message.expires_at is not None and message.expires_at <= now:
        attempt.status, attempt.error_detail = AttemptStatus.EXPIRED, "message expired before sending"
        return DeliveryOutcome.EXPIRED
    if attempt.mode == StepMode.ESCALATE:
        earlier = [a for a in message.attempts if a.step_index < attempt.step_index]
        if plan_progress.watched_reached(earlier, attempt.unless_status):
            attempt.status = AttemptStatus.CANCELLED
            attempt.error_detail = f"escalation cancelled: '{attempt.unless_status}' reached in time"
            metrics.ESCALATIONS.labels(metrics.EscalationOutcome.CANCELLED).inc()
            return DeliveryOutcome.CANCELLED
        metrics.ESCALATIONS.labels(metrics.EscalationOutcome.FIRED).inc()
    return None


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.error_class == ErrorClass.TRANSIENT


def _send(ctx: DeliveryContext, attempt, delivery: Delivery, now: datetime
          ) -> tuple[SendResult | None, ProviderError | None, str | None]:
    remaining = max((attempt.deadline_at - now).total_seconds(), 1.0) if attempt.deadline_at else 30.0
    last_error: ProviderError | None = None
    last_name: str | None = None
    for provider in ctx.registry.candidates(attempt.channel, attempt.platform, attempt.provider):
        breaker = ctx.registry.breakers[provider.name]
        last_name = provider.name
        try:
            for try_ in Retrying(retry=retry_if_exception(_transient), reraise=True,
                                 stop=stop_after_attempt(IN_TASK_TRIES)
                                 | stop_before_delay(min(remaining, 10)),
                                 wait=wait_random_exponential(multiplier=0.1, max=2)):
                with try_:
                    if try_.retry_state.attempt_number > 1:
                        metrics.RETRIES.labels(attempt.channel, provider.name).inc()
                    result = observed_send(provider, delivery)
            breaker.record_success()
            return result, None, provider.name
        except ProviderError as exc:
            last_error = exc
            if exc.error_class != ErrorClass.PERMANENT:
                breaker.record_failure()
            else:
                breaker.record_success()  # the provider answered; the address is at fault
            if exc.error_class == ErrorClass.PERMANENT:
                break  # the address is at fault, not the provider: another won't help
            if exc.error_class == ErrorClass.CONFIGURATION:
                log.error("provider misconfigured; failing over",
                          extra={"attempt_id": attempt.id, "provider": provider.name, "error_code": exc.code})
            continue
        except Exception as exc:  # noqa: BLE001 - a provider bug must not lose the attempt
            # No traceback text: a provider's exception message may carry the address.
            log.error("provider raised unexpectedly", extra={"attempt_id": attempt.id, "provider": provider.name,
                                                             "error_code": type(exc).__name__})
            breaker.record_failure()
            last_error = ProviderError(ErrorClass.TRANSIENT, type(exc).__name__, provider=provider.name)
    if last_name is None:  # no provider tried: every breaker is open (wait), or none is configured
        last_error = ctx.registry.circuit_open_error(attempt.channel, attempt.platform)
    return None, last_error, last_name


def _record_sent(session: Session, attempt: Attempt, result: SendResult, now: datetime) -> None:
    attempt.status = result.status if result.status != AttemptStatus.QUEUED else AttemptStatus.SENT
    attempt.provider = result.provider
    attempt.provider_message_id = result.provider_message_id
    attempt.sandboxed = result.sandboxed
    attempt.sent_at = now
    attempt.send_count += 1
    attempt.error_class = attempt.error_code = None
    metrics.ATTEMPTS_SENT.labels(attempt.channel, result.provider).inc()
    log.info("attempt sent", extra={"message_id": attempt.message_id, "attempt_id": attempt.id,
                                    "channel": attempt.channel, "provider": result.provider})
    if not result.sandboxed and attempt.channel != Channel.IN_APP:
        # Only a provider that reports back can have a receipt waiting for this send.
        apply_parked(session, attempt, now)


def _record_error(session: Session, attempt: Attempt, message: Message, error: ProviderError | None,
                  now: datetime) -> DeliveryOutcome:
    error = error or ProviderError(ErrorClass.CONFIGURATION, DispatchErrorCode.NO_PROVIDER,
                                   "no provider for this channel")
    attempt.error_class, attempt.error_code = error.error_class.value, error.code
    attempt.error_detail = error.detail[:500] if error.detail else None
    extra = {"message_id": message.id, "attempt_id": attempt.id, "channel": attempt.channel,
             "provider": error.provider, "error_class": error.error_class.value, "error_code": error.code}
    if error.error_class == ErrorClass.TRANSIENT:
        retry_at = now + timedelta(seconds=backoff_seconds(attempt.tries, cap=MAX_BACKOFF_SECONDS))
        if attempt.deadline_at is None or retry_at < attempt.deadline_at:
            if error.retry_after:
                retry_at = max(retry_at, now + timedelta(seconds=error.retry_after))
            attempt.status, attempt.due_at = AttemptStatus.QUEUED, retry_at
            metrics.RETRIES.labels(attempt.channel, error.provider or "-").inc()
            log.warning("transient failure; retrying later", extra=extra)
            return DeliveryOutcome.RETRY_LATER
    attempt.status = AttemptStatus.FAILED
    _mark_address_dead(session, attempt, error, now)
    metrics.ATTEMPTS_FAILED.labels(attempt.channel, error.provider or "-", error.error_class.value).inc()
    log.warning("attempt failed", extra=extra)
    return DeliveryOutcome.FAILED


def _mark_address_dead(session: Session, attempt, error: ProviderError, now: datetime) -> None:
    """So the policy stops choosing an address the provider told us is dead (or that the
    person opted out of): one place for address and consent signals, shared with receipts."""
    address_signals.apply_send_error(session, attempt, error, now)


def _finish(session: Session, message, now: datetime) -> None:
    """Advances the plan; what it releases is announced when this unit of work commits."""
    released = plan_progress.advance(message, now, session)
    for a in released:
        if a.mode == StepMode.FALLBACK:
            metrics.FALLBACKS.labels(a.channel).inc()
