"""How a message's plan moves on after one of its attempts changes. Pure functions over rows.

The semantics of a chain (also in policies/README.md, "Chains"). Steps form groups: a step
and the `parallel` steps after it. Each later group has exactly one trigger and exactly one
cancelling condition, both named by its mode, and nothing else starts or stops it:

- `fallback`: starts when the group right before it has failed (every attempt ended, one
  really failed). It is cancelled when that same group succeeded (delivered, or seen/read),
  or ended in a way that can no longer turn into a failure (push or in-app `sent`, a
  sandboxed send, nothing but cancelled attempts: the cancellation cascades down a chain
  of fallbacks), or was handed over (SMS/email `sent`) and neither failed nor confirmed
  within the fallback's window. Success of a group further up does NOT cancel it: in
  "in-app, push if unread after 10 min, email if push fails", email waits for push alone.
- `escalate`: due `after_seconds` after the group before it was due to start (at accept
  time if that group itself waits on a failure); cancelled only when `unless_status` is
  reached on any earlier step (the user read the message anywhere: no reminder); due at
  once when the group before it failed (nothing left to wait for).
- `first` / `parallel`: due at once (or at `not_before`, or at the user's next session
  when held); never cancelled by the plan.
A status change is announced to the product backend (callbacks outbox) in the same
transaction, and released attempts to the workers once it commits."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, object_session

from channels import DECLARED
from policies import StepMode, WatchedStatus
from providers.base import TERMINAL_FAILURES, AttemptStatus

from ..domain.statuses import derive_message_status
from ..storage.db import announce
from ..storage.models import Attempt, Message
from . import transitions

# Which attempt facts satisfy an escalation's `unless_status`.
WATCHED = {
    WatchedStatus.DELIVERED: lambda a: a.status == AttemptStatus.DELIVERED or a.seen_at or a.read_at,
    WatchedStatus.SEEN: lambda a: a.seen_at or a.read_at or a.acknowledged_at,
    WatchedStatus.READ: lambda a: a.read_at or a.acknowledged_at,
    WatchedStatus.ACKNOWLEDGED: lambda a: a.acknowledged_at,
}


def groups_of(message: Message) -> dict[int, list[Attempt]]:
    grouped: dict[int, list[Attempt]] = {}
    for attempt in message.attempts:
        grouped.setdefault(attempt.step_group, []).append(attempt)
    return dict(sorted(grouped.items()))


def _failed(group: list[Attempt]) -> bool:
    """Every attempt ended and at least one really failed. A group cancelled as not needed
    did not fail: it must not release what comes after it."""
    statuses = [AttemptStatus(a.status) for a in group]
    return all(s in TERMINAL_FAILURES for s in statuses) and any(s != AttemptStatus.CANCELLED for s in statuses)


def _open(group: list[Attempt]) -> bool:
    return any(a.status in (AttemptStatus.QUEUED, AttemptStatus.SENDING) for a in group)


# Channels whose providers report a failure after accepting a send (Twilio status callbacks,
# email bounces): each spec's `late_failure`. Push (FCM/APNs answer at send time) and in-app
# never fail once `sent`, and a sandboxed send never hears back.
_LATE_FAILURE_CHANNELS = frozenset(spec.name for spec in DECLARED if spec.late_failure)


def _may_still_fail(group: list[Attempt]) -> bool:
    """A step handed over (`sent`) to a provider that can still report it failed."""
    return any(a.status == AttemptStatus.SENT and a.channel in _LATE_FAILURE_CHANNELS and not a.sandboxed
               for a in group)


def _delivered(attempts: list[Attempt]) -> bool:
    return any(a.status == AttemptStatus.DELIVERED or a.read_at or a.seen_at for a in attempts)


def watched_reached(attempts: list[Attempt], unless_status: str | None) -> bool:
    check = WATCHED.get(unless_status or "")
    return bool(check) and any(check(a) for a in attempts)


def _cancel(pending: list[Attempt], why: str) -> None:
    for a in pending:
        a.status, a.error_detail = AttemptStatus.CANCELLED, why


def _release(message: Message, pending: list[Attempt], now: datetime,
             after: list[Attempt] | None = None) -> list[Attempt]:
    """Fallback steps start now, with a fresh sending window; an in-app step that is held
    for the user's next session stays held (released, but due when the user is back). A
    fallback after a held step had its window planned from the end of the hold."""
    due_now = []
    held_until = max((a.hold_until for a in after or () if a.hold_until is not None), default=None)
    for a in pending:
        start = held_until if held_until is not None and held_until > a.created_at else a.created_at
        window = max(a.deadline_at - start, timedelta(0)) if a.deadline_at else timedelta(0)
        a.released = True
        if a.hold_until is None:
            a.due_at = now
            a.deadline_at = now + window
            if message.expires_at:
                a.deadline_at = min(a.deadline_at, message.expires_at)
            due_now.append(a)
    return due_now


def advance(message: Message, now: datetime, session: Session | None = None) -> list[Attempt]:
    """Updates attempts in place (the chain semantics in this module's docstring); returns
    those newly released and due now."""
    previous = message.status
    released: list[Attempt] = []
    if message.cancelled_at is not None:
        # Cancelled (sending/cancellation.py): a send that was in flight and is now put back
        # in the queue to retry, or anything a receipt would release, is not sent.
        _cancel([a for a in message.attempts if a.status == AttemptStatus.QUEUED], "the message was cancelled")
    groups = list(groups_of(message).values())
    for index in range(1, len(groups)):
        prev, group = groups[index - 1], groups[index]
        earlier = [a for g in groups[:index] for a in g]
        pending = [a for a in group if a.status == AttemptStatus.QUEUED]
        if not pending:
            continue
        if group[0].mode == StepMode.FALLBACK and not group[0].released:
            if _delivered(prev):
                _cancel(pending, "not needed: the step before delivered")
            elif _failed(prev):
                released.extend(_release(message, pending, now, prev))
            elif not _open(prev) and not _may_still_fail(prev):
                # Settled without a failure that could still arrive: this fallback can never
                # fire, so the message's status is known now, not at the deadline.
                _cancel(pending, "not needed: the step before ended and cannot fail any more")
            elif not _open(prev) and all(a.deadline_at and a.deadline_at <= now for a in pending):
                # The step before was handed over (e.g. SMS `sent`) and neither failed nor
                # confirmed within the window: stop waiting, or the message never settles.
                _cancel(pending, "not needed: the step before neither failed nor delivered in time")
        elif group[0].mode == StepMode.ESCALATE:
            if watched_reached(earlier, group[0].unless_status):
                _cancel(pending, f"escalation cancelled: '{group[0].unless_status}' reached in time")
            elif _failed(prev):
                # Nothing to wait for: the step being watched can no longer succeed.
                due_now = [a for a in pending if a.hold_until is None and (a.due_at is None or a.due_at > now)]
                for a in due_now:
                    a.due_at = now
                released.extend(due_now)
    session = session or object_session(message)
    transitions.change_status(session, message, transitions.after_advance(previous, derive_message_status(
        message.attempts)), now)
    if session is not None:
        for a in released:
            a.enqueued_at = now
        announce(session, [a.id for a in released])  # woken once this unit of work commits
    return released
