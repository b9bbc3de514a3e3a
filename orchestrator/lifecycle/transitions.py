"""The message statuses' allowed transitions, as a table, and the one function that changes a
message's status (the vocabulary itself is `domain.statuses.MessageStatus`).

Who moves a message where:
- accept (sending/routing.py) inserts it `accepted`, `suppressed` or `scheduled`;
- a scheduled message is claimed (`scheduled` -> `accepted`) and decided when its time comes
  (sending/scheduling.py), or cancelled before (sending/cancellation.py, recipients/erasure.py);
- from then on its status is derived from its attempts (`derive_message_status`) each time the
  plan moves on (plan_progress.advance): engagement timestamps are set once and terminal attempt
  statuses are final, so a message that was read stays read or better, and nothing leaves
  `acknowledged`;
- a notice that requires acknowledgement and was not acknowledged in time becomes
  `unacknowledged` (sending/confirmations.py), final unless an acknowledgement still arrives.

Bulk UPDATEs (scheduling's claim, erasure) cannot go through `change_status` row by row
without more statements; they name their transition with `checked(old, new)`, verified once at
import time."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from ..domain.statuses import MessageStatus as S
from .status_callbacks import record_status_change

# The statuses `derive_message_status` returns for a message that has attempts.
_DERIVED = frozenset({S.IN_PROGRESS, S.SENT, S.DELIVERED, S.READ, S.ACKNOWLEDGED, S.FAILED, S.EXPIRED,
                      S.CANCELLED})
# After this, only engagement (a late open, an acknowledgement) or the confirmation timer moves it.
_ENGAGED_OR_UNACKNOWLEDGED = frozenset({S.READ, S.ACKNOWLEDGED, S.UNACKNOWLEDGED})

TRANSITIONS: dict[S, frozenset[S]] = {
    # Decided when send_at comes (claimed as `accepted` first), or cancelled before.
    S.SCHEDULED: frozenset({S.ACCEPTED, S.SUPPRESSED, S.EXPIRED, S.CANCELLED}),
    # A scheduled message's decision may still suppress or expire it after the claim.
    S.ACCEPTED: _DERIVED | {S.SUPPRESSED, S.UNACKNOWLEDGED},
    S.IN_PROGRESS: (_DERIVED - {S.IN_PROGRESS}) | {S.UNACKNOWLEDGED},
    # Handed over without confirmation: a late delivery or failure (which may release a
    # fallback, or a reminder may go out: in progress again), or engagement.
    S.SENT: (_DERIVED - {S.SENT}) | {S.UNACKNOWLEDGED},
    # A delivered attempt is final: only engagement moves the message on.
    S.DELIVERED: _ENGAGED_OR_UNACKNOWLEDGED,
    # Every attempt ended: engagement may still arrive (a late open of a bounced email).
    S.FAILED: _ENGAGED_OR_UNACKNOWLEDGED,
    S.EXPIRED: _ENGAGED_OR_UNACKNOWLEDGED,
    S.CANCELLED: _ENGAGED_OR_UNACKNOWLEDGED,
    S.READ: frozenset({S.ACKNOWLEDGED, S.UNACKNOWLEDGED}),
    S.UNACKNOWLEDGED: frozenset({S.ACKNOWLEDGED}),
    S.ACKNOWLEDGED: frozenset(),
    S.SUPPRESSED: frozenset(),  # never planned: nothing can happen to it
}


class IllegalTransition(Exception):
    def __init__(self, old: str, new: str) -> None:
        super().__init__(f"message status may not move from {old} to {new}")
        self.old, self.new = old, new


def allowed(old: str, new: str) -> bool:
    """Staying put is always allowed (and changes nothing)."""
    return old == new or S(new) in TRANSITIONS[S(old)]


def checked(old: S, new: S) -> S:
    """`new`, after checking `old -> new` against the table: for statements built once."""
    if not allowed(old, new):
        raise IllegalTransition(old, new)
    return new


def after_advance(previous: str, derived: S) -> S:
    """The status a message takes when its plan moves on: derived from its attempts, except
    that `unacknowledged` is final unless acknowledged (sending/confirmations)."""
    if previous == S.UNACKNOWLEDGED and derived != S.ACKNOWLEDGED:
        return S.UNACKNOWLEDGED
    return derived


class MessageLike(Protocol):
    """An ORM `Message` or a `plans.PlanView`: what a status change and its callback need."""

    id: str
    api_key_id: str | None
    category: str
    status: str


def change_status(session: Session | None, message: MessageLike, new: S, now: datetime, *,
                  callback: bool = True) -> bool:
    """Checks `message.status -> new` against the table, sets it (the caller's flush or
    `plans.save` writes it) and records the status callback in the same transaction.
    Returns whether the status changed. Raises IllegalTransition."""
    previous = message.status
    if previous == new:
        return False
    checked(S(previous), new)
    message.status = new
    if callback and session is not None:
        record_status_change(session, message, previous, now)
    return True
