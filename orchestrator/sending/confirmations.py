"""Delivery and read confirmation for notices whose policy requires it (legal notices,
`require_confirmation` in the policy). Every query of the `confirmations` table is here.

What happens to such a notice:
- accepted: a confirmation row is written with the message, in the same transaction
  (`plan_row`, written by `messages.insert_planned`), with the policy's `remind_after` /
  `escalate_after` (from the send);
- its email carries a signed, expiring acknowledgement link (`sending/ack_links`); the
  same notice is mirrored in the user's inbox;
- acknowledged through the link (`AckChannel.EMAIL_LINK`) or the inbox
  (`POST /v1/inbox/{id}/acknowledged`, `AckChannel.INBOX`): `acknowledge` records who
  (user id; the in-app token id for the inbox), when and through which channel; the first
  acknowledgement is the one kept. The attempt's `acknowledged_at` moves the message to
  `acknowledged` through the ordinary receipt path;
- not acknowledged by `remind_after`: the sweeper (`sweep`, durable: a row with `due_at`)
  sends the email again (the push, for a notice that went without email), as a new attempt
  of the same message (mode `reminder`);
- not acknowledged by `escalate_after`: escalated. The message becomes `unacknowledged`
  (final, unless an acknowledgement still arrives), the product backend gets the status
  callback, and the compliance view lists it for follow-up.
- opened: a `read` (or `clicked`) report on its inbox item records when, through which
  token and how (`ReadChannel.INBOX_OPEN`: `record_read`); "read all" in the inbox never
  marks such an item (`requires_acknowledgement` on the inbox entry), so the record holds up;
- suppressed by the policy (no channel that can record an acknowledgement is usable): a row
  at stage `undeliverable` with the plan's reason, so the legal page lists it for follow-up.
So a notice never stays `sent` for ever for want of a provider receipt."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import Session

from policies import StepMode
from providers.base import AttemptStatus, Channel

from ..domain.statuses import AckChannel, ConfirmationStage, MessageStatus, ReadChannel
from ..storage.db import announce
from ..storage.models import Attempt, Confirmation, Message, new_id

log = logging.getLogger("orchestrator.confirmations")

BATCH = 200
OPEN_STAGES = (ConfirmationStage.AWAITING, ConfirmationStage.REMINDED)
UNDELIVERABLE_REASON_CHARS = 500


def plan_row(message_id: str, user_id: str, plan: dict[str, Any], has_attempts: bool,
             now: datetime) -> dict[str, Any] | None:
    """The confirmation row of a plan that requires confirmation (written with the message):
    awaiting its acknowledgement, or undeliverable when the plan sends nothing."""
    timers = plan.get("confirmation")
    if timers and not plan.get("suppressed") and has_attempts:
        return {
            "message_id": message_id, "user_id": user_id, "stage": ConfirmationStage.AWAITING.value,
            "due_at": now + timedelta(seconds=timers["remind_after_seconds"]),
            "remind_after_seconds": timers["remind_after_seconds"],
            "escalate_after_seconds": timers["escalate_after_seconds"], "reminders_sent": 0, "created_at": now,
            "undeliverable_reason": None,
        }
    if not plan.get("requires"):
        return None
    why = "; ".join(plan.get("suppressed_reasons") or ()) or "no channel could carry it"
    return {
        "message_id": message_id, "user_id": user_id, "stage": ConfirmationStage.UNDELIVERABLE.value,
        "due_at": None, "remind_after_seconds": 0, "escalate_after_seconds": 0, "reminders_sent": 0,
        "created_at": now, "undeliverable_reason": why[:UNDELIVERABLE_REASON_CHARS],
    }


def insert_rows(conn, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(Confirmation.__table__), rows)


class EmailAckHook:
    """Adds the acknowledgement link to the email of a notice that requires confirmation
    (the delivery path knows which from its claim: `confirmable`)."""

    def __init__(self, st) -> None:
        self.st = st

    def __call__(self, delivery):
        from .ack_links import AckLinks

        return AckLinks.for_state(self.st).decorate(delivery)


def acknowledge(session: Session, message_id: str, attempt_id: str, user_id: str, via: AckChannel,
                token_id: str | None, now: datetime) -> bool:
    """Records the acknowledgement; the first one is kept (True when this one was)."""
    done = session.execute(
        update(Confirmation).where(Confirmation.message_id == message_id, Confirmation.acknowledged_at.is_(None))
        .values(stage=ConfirmationStage.ACKNOWLEDGED.value, due_at=None, acknowledged_at=now,
                acknowledged_via=via.value, acknowledged_attempt_id=attempt_id, acknowledged_by=user_id,
                acknowledged_token_id=token_id)
        .execution_options(synchronize_session=False)).rowcount
    if done:
        log.info("notice acknowledged", extra={"message_id": message_id, "attempt_id": attempt_id, "event": via.value})
    return bool(done)


def record_read(session: Session, message_id: str, attempt_id: str, via: ReadChannel, token_id: str | None,
                now: datetime) -> bool:
    """Records that the notice was opened (the first opening is kept; True when this one was).
    Never called by "read all": only a report on that one item."""
    done = session.execute(
        update(Confirmation).where(Confirmation.message_id == message_id, Confirmation.read_at.is_(None),
                                   Confirmation.stage != ConfirmationStage.UNDELIVERABLE.value)
        .values(read_at=now, read_via=via.value, read_attempt_id=attempt_id, read_token_id=token_id)
        .execution_options(synchronize_session=False)).rowcount
    if done:
        log.info("notice opened", extra={"message_id": message_id, "attempt_id": attempt_id, "event": via.value})
    return bool(done)


def requiring_acknowledgement(session: Session, message_ids: list[str]) -> set[str]:
    """Which of these messages need a tracked acknowledgement (one query)."""
    if not message_ids:
        return set()
    return set(session.scalars(select(Confirmation.message_id).where(Confirmation.message_id.in_(message_ids))))


def stop_timers_of_user(session: Session, user_id: str) -> None:
    """No reminder or escalation is due any more for this user's open notices (erasure)."""
    session.execute(update(Confirmation).where(
        Confirmation.user_id == user_id, Confirmation.stage.in_([s.value for s in OPEN_STAGES]),
    ).values(due_at=None))


def sweep(session: Session, now: datetime, deadline_seconds: int) -> list[str]:
    """Reminders and escalations that are due; returns the reminder attempts to announce
    (announced by this unit of work on commit as well). Under each message's lock."""
    from ..lifecycle import plans, transitions
    due = session.scalars(select(Confirmation).where(
        Confirmation.stage.in_([s.value for s in OPEN_STAGES]), Confirmation.due_at <= now,
    ).order_by(Confirmation.due_at).limit(BATCH)).all()
    created: list[str] = []
    for row in due:
        message = plans.load_orm(session, row.message_id, now)
        session.refresh(row)  # an acknowledgement may have committed meanwhile
        if row.stage not in OPEN_STAGES or row.due_at is None or row.due_at > now:
            continue
        if row.acknowledged_at is not None or any(a.acknowledged_at for a in message.attempts):
            row.stage, row.due_at = ConfirmationStage.ACKNOWLEDGED, None
            continue
        if message.cancelled_at is not None:
            row.due_at = None  # cancelled by its sender: nothing to remind of, nothing to escalate
            continue
        if row.stage == ConfirmationStage.AWAITING:
            reminder = _reminder(message, now, deadline_seconds)
            if reminder is not None:
                session.add(reminder)
                created.append(reminder.id)
                row.reminders_sent += 1
            row.stage, row.reminded_at = ConfirmationStage.REMINDED, now
            row.due_at = row.created_at + timedelta(seconds=row.escalate_after_seconds)
            log.info("notice reminder", extra={"message_id": row.message_id, "count": row.reminders_sent})
        else:
            row.stage, row.escalated_at, row.due_at = ConfirmationStage.ESCALATED, now, None
            transitions.change_status(session, message, MessageStatus.UNACKNOWLEDGED, now)
            log.warning("notice not acknowledged in time: escalated", extra={"message_id": row.message_id})
    session.flush()
    announce(session, created)
    return created


def _reminder(message: Message, now: datetime, deadline_seconds: int) -> Attempt | None:
    """The notice's email again, as a new step of the same message (with a new link); for a
    notice that went without email (to the inbox, announced by push), the push again."""
    went_out = [a for a in message.attempts if a.address and a.status in (AttemptStatus.SENT, AttemptStatus.DELIVERED)
                and a.mode != StepMode.REMINDER]
    emails = [a for a in went_out if a.channel == Channel.EMAIL] or [a for a in went_out if a.channel == Channel.PUSH]
    if not emails or (message.expires_at is not None and message.expires_at <= now):
        return None  # nothing went out outside the app (bounced, failed), or the notice expired
    first = min(emails, key=lambda a: a.step_index)
    last_index = max(a.step_index for a in message.attempts)
    last_group = max(a.step_group for a in message.attempts)
    due = _push_time(first, now) if first.channel == Channel.PUSH else now
    deadline = due + timedelta(seconds=deadline_seconds)
    if message.expires_at is not None:
        if message.expires_at <= due:
            return None
        deadline = min(deadline, message.expires_at)
    return Attempt(
        id=new_id(), message_id=message.id, user_id=message.user_id, step_index=last_index + 1,
        step_group=last_group + 1, channel=first.channel, mode=StepMode.REMINDER, provider=first.provider,
        address=first.address, platform=first.platform, status=AttemptStatus.QUEUED.value, released=True, due_at=due,
        deadline_at=deadline, tries=0, send_count=0, sandboxed=False, enqueued_at=now, created_at=now,
        updated_at=now, quiet=False,
    )


def _push_time(first: Attempt, now: datetime) -> datetime:
    """A push interrupts: the reminder goes at the time of day the first push went (which the
    policy's quiet hours allowed), the first such time from now on."""
    if first.sent_at is None:
        return now
    sent = first.sent_at if first.sent_at.tzinfo else first.sent_at.replace(tzinfo=now.tzinfo)
    days = max(0, -((sent - now) // timedelta(days=1)))  # whole days, rounded up
    return max(now, sent + timedelta(days=days))


# -- the compliance view -------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One step of a notice's record as the legal page shows it: what, when, through which
    channel (or how), and a detail (e.g. who acknowledged, why it was undeliverable)."""

    name: str
    at: datetime | None
    channel: str = ""
    detail: str = ""


@dataclass(frozen=True)
class NoticeState:
    message_id: str
    user_id: str
    title: str
    category: str
    policy_version: str
    status: str
    accepted_at: datetime
    stage: str
    sent_at: datetime | None
    sent_channels: str
    delivered_at: datetime | None
    delivered_channel: str | None
    read_at: datetime | None
    read_via: str | None
    acknowledged_at: datetime | None
    acknowledged_via: str | None
    acknowledged_by: str | None
    acknowledged_token_id: str | None
    reminders_sent: int
    reminded_at: datetime | None
    reminder_channel: str | None
    escalated_at: datetime | None
    email_status: str | None
    undeliverable_reason: str | None

    CSV_COLUMNS = ("message_id", "user_id", "title", "category", "policy_version", "status", "accepted_at",
                   "stage", "sent_at", "sent_channels", "delivered_at", "delivered_channel", "read_at", "read_via",
                   "acknowledged_at", "acknowledged_via", "acknowledged_by", "acknowledged_token_id",
                   "reminders_sent", "reminded_at", "reminder_channel", "escalated_at", "email_status",
                   "undeliverable_reason")

    def csv_row(self) -> list[str]:
        out = []
        for name in self.CSV_COLUMNS:
            value = getattr(self, name)
            out.append(value.isoformat() if isinstance(value, datetime) else "" if value is None else str(value))
        return out

    @property
    def stages(self) -> list[Stage]:
        """Every stage reached, in the order a notice goes through them."""
        out = [Stage("accepted", self.accepted_at)]
        if self.stage == ConfirmationStage.UNDELIVERABLE:
            return [*out, Stage("undeliverable", self.accepted_at, detail=self.undeliverable_reason or "")]
        if self.sent_at:
            out.append(Stage("sent", self.sent_at, self.sent_channels))
        if self.delivered_at:
            out.append(Stage("delivered", self.delivered_at, self.delivered_channel or ""))
        if self.read_at:
            out.append(Stage("opened", self.read_at, self.read_via or ""))
        if self.reminded_at:
            detail = f"{self.reminders_sent} sent" if self.reminders_sent else "nothing could be sent again"
            out.append(Stage("reminded", self.reminded_at, self.reminder_channel or "", detail))
        if self.acknowledged_at:
            who = f"user {self.acknowledged_by}" if self.acknowledged_by else ""
            if self.acknowledged_token_id:
                who += f", in-app token {self.acknowledged_token_id}"
            out.append(Stage("acknowledged", self.acknowledged_at, self.acknowledged_via or "", who))
        if self.escalated_at:
            out.append(Stage("escalated", self.escalated_at, detail="not acknowledged in time"))
        return sorted(out, key=lambda st: st.at or self.accepted_at)


def _cell(text: str) -> str:
    """A spreadsheet must not read a cell as a formula (CSV injection): user ids are the
    sender's strings."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_header() -> str:
    return ",".join(NoticeState.CSV_COLUMNS) + "\n"


def to_csv(states: list[NoticeState], header: bool = True) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(NoticeState.CSV_COLUMNS)
    for state in states:
        writer.writerow([_cell(v) for v in state.csv_row()])
    return buffer.getvalue()


NOTICE_ORDER = (Confirmation.created_at, Confirmation.message_id)  # newest first; the cursor is this key


def notice_key(state: NoticeState) -> tuple[datetime, str]:
    return state.accepted_at, state.message_id


def notices(session: Session, limit: int = 500, stage: str | None = None,
            after: tuple[datetime, str] | None = None) -> list[NoticeState]:
    """Notices that require confirmation, newest first (keyset: after `after`, the key of the
    last row of the previous page), with every stage of their record. Two queries per page:
    the confirmations with their messages, and the attempts of those messages."""
    created, mid = NOTICE_ORDER
    query = (select(Confirmation, Message.category, Message.policy_version, Message.status, Message.content)
             .join(Message, Message.id == Confirmation.message_id)
             .order_by(created.desc(), mid.desc()).limit(limit))
    if stage:
        query = query.where(Confirmation.stage == stage)
    if after is not None:
        query = query.where(or_(created < after[0], and_(created == after[0], mid < after[1])))
    rows = session.execute(query).all()
    ids = [r[0].message_id for r in rows]
    attempts: dict[str, list[Any]] = {}
    if ids:
        for a in session.execute(select(Attempt.message_id, Attempt.channel, Attempt.status, Attempt.mode,
                                        Attempt.sent_at, Attempt.delivered_at, Attempt.read_at,
                                        Attempt.acknowledged_at)
                                 .where(Attempt.message_id.in_(ids)).order_by(Attempt.step_index)):
            attempts.setdefault(a.message_id, []).append(a)
    return [_state(conf, category, version, status, content, attempts.get(conf.message_id, []))
            for conf, category, version, status, content in rows]


def _earliest(pairs: list[tuple[datetime, str]]) -> tuple[datetime | None, str | None]:
    if not pairs:
        return None, None
    return min(pairs)


def _state(conf: Confirmation, category: str, version: str, status: str, content: Any,
           mine: list[Any]) -> NoticeState:
    first = [a for a in mine if a.mode != StepMode.REMINDER]
    reminders = [a for a in mine if a.mode == StepMode.REMINDER]
    sent = sorted((a.sent_at, a.channel) for a in first if a.sent_at)
    delivered_at, delivered_channel = _earliest([(a.delivered_at, a.channel) for a in mine if a.delivered_at])
    # Opened: the inbox opening the confirmation records, else an email open the provider reported.
    read_at, read_via = conf.read_at, conf.read_via
    if read_at is None:
        # An acknowledgement implies `read` on its attempt at the same time: that is no opening.
        read_at, _ = _earliest([(a.read_at, a.channel) for a in mine if a.read_at and a.channel == Channel.EMAIL
                                and (a.acknowledged_at is None or a.read_at < a.acknowledged_at)])
        read_via = ReadChannel.EMAIL_OPEN.value if read_at else None
    email = next((a.status for a in first if a.channel == Channel.EMAIL), None)
    title = content.get("title", "") if isinstance(content, dict) else ""
    return NoticeState(
        message_id=conf.message_id, user_id=conf.user_id, title=str(title), category=category,
        policy_version=version, status=status, accepted_at=conf.created_at, stage=conf.stage,
        sent_at=sent[0][0] if sent else None, sent_channels=", ".join(dict.fromkeys(ch for _, ch in sent)),
        delivered_at=delivered_at, delivered_channel=delivered_channel, read_at=read_at, read_via=read_via,
        acknowledged_at=conf.acknowledged_at, acknowledged_via=conf.acknowledged_via,
        acknowledged_by=conf.acknowledged_by, acknowledged_token_id=conf.acknowledged_token_id,
        reminders_sent=conf.reminders_sent, reminded_at=conf.reminded_at,
        reminder_channel=reminders[0].channel if reminders else None, escalated_at=conf.escalated_at,
        email_status=email, undeliverable_reason=conf.undeliverable_reason)
