"""Builds the policy's inputs from what the database knows (plus per-message overrides).
The policy engine never reads the database; this module is the only bridge."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session, joinedload

from policies import Device as PolicyDevice
from policies import MessageFacts, Policy, RecipientFacts
from policies.derive import cap_windows
from providers.base import Channel
from providers.sms_text import sms_text

from ..content.channels import CHANNEL_FIELDS, for_channel
from ..domain.statuses import MessageStatus
from ..schemas import RecipientRef, SendRequest
from ..storage.models import Attempt, Device, Message, Recipient


def load_recipient(session: Session, user_id: str) -> Recipient | None:
    return session.scalars(
        select(Recipient).where(Recipient.user_id == user_id).options(joinedload(Recipient.devices))
    ).unique().one_or_none()


def in_app_counts(session: Session, user_id: str, tz: str, now: datetime) -> tuple[int, int]:
    """In-app messages shown to the user today (in their timezone) and in the last 7 days."""
    local_midnight = now.astimezone(ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = now - timedelta(days=7)
    day_start = local_midnight.astimezone(now.tzinfo)
    return _window_counts(session, _IN_APP_COUNTS, user_id, day_start, week_start)


def _counts_by_window(at, *where):
    """(count since `day_start`, count since `week_start`) of the user's rows, `at` being the
    row's time. Built once per statement, as every statement on the accept path: building and
    keying a statement per call cost more than running it (py-spy, in-app sends, part f)."""
    return (select(func.count(case((at >= bindparam("day_start"), 1))),
                   func.count(case((at >= bindparam("week_start"), 1))))
            .where(at >= bindparam("since"), *where))


def _window_counts(session: Session, statement, user_id: str, day_start: datetime, week_start: datetime,
                   **params) -> tuple[int, int]:
    day, week = session.connection().execute(statement, {
        "user_id": user_id, "day_start": day_start, "week_start": week_start,
        "since": min(day_start, week_start), **params}).one()
    return day or 0, week or 0


_IN_APP_COUNTS = _counts_by_window(Attempt.sent_at, Attempt.user_id == bindparam("user_id"),
                                   Attempt.channel == Channel.IN_APP)


_NOT_COUNTED = (MessageStatus.SUPPRESSED.value, MessageStatus.CANCELLED.value)


def message_counts(session: Session, policy: Policy, user_id: str, tz: str, now: datetime) -> tuple[int, int]:
    """Messages of the policy's capped categories to the user in their current local day
    and ISO week, every channel together (one message is one, however many channels it
    used); suppressed and cancelled messages do not count. One statement on the
    (user_id, created_at) index. A message deferred by the cap counts in the window it was
    accepted in."""
    day_start, week_start, _, _ = cap_windows(now, tz)
    return _window_counts(session, _MESSAGE_COUNTS, user_id, day_start, week_start,
                          categories=sorted(policy.capped_categories))


_MESSAGE_COUNTS = _counts_by_window(Message.created_at, Message.user_id == bindparam("user_id"),
                                    Message.category.in_(bindparam("categories", expanding=True)),
                                    *(Message.status != status for status in _NOT_COUNTED))


def with_message_counts(session: Session, policy: Policy, facts: RecipientFacts, now: datetime) -> RecipientFacts:
    day, week = message_counts(session, policy, facts.user_id, facts.timezone, now)
    return replace(facts, message_count_day=day, message_count_week=week)


_RECIPIENT_COLUMNS = (Recipient.user_id, Recipient.email, Recipient.email_valid, Recipient.phone,
                      Recipient.phone_valid, Recipient.timezone, Recipient.consents, Recipient.quiet_hours,
                      Recipient.last_active_at, Recipient.last_heartbeat_at, Recipient.preferences,
                      Device.token, Device.platform, Device.active)
_RECIPIENT_QUERY = (select(*_RECIPIENT_COLUMNS).outerjoin(Device, Device.user_id == Recipient.user_id)
                    .where(Recipient.user_id == bindparam("user_id")).order_by(Device.id))


_RECIPIENTS_QUERY = (select(*_RECIPIENT_COLUMNS).outerjoin(Device, Device.user_id == Recipient.user_id)
                     .where(Recipient.user_id.in_(bindparam("user_ids", expanding=True)))
                     .order_by(Recipient.user_id, Device.id))
PREFETCH_CHUNK = 500


def prefetch_recipients(session: Session, user_ids) -> dict[str, list]:
    """The rows `recipient_facts` reads, for many users in a few statements (a batch send)."""
    found: dict[str, list] = {uid: [] for uid in user_ids}
    ids = list(found)
    for start in range(0, len(ids), PREFETCH_CHUNK):
        for row in session.connection().execute(_RECIPIENTS_QUERY, {"user_ids": ids[start:start + PREFETCH_CHUNK]}):
            found[row.user_id].append(row)
    return found


def recipient_facts(session: Session, ref: RecipientRef, now: datetime, presence=None, *,
                    counts: bool = True, rows: list | None = None) -> RecipientFacts:
    """One statement (the recipient joined to its devices), plus the in-app counters when
    `counts` (see `needs_in_app_counts`). `presence` (inapp.presence) adds what the row
    cannot know: a heartbeat kept in Redis and whether a live stream is open right now."""
    if rows is None:  # else prefetched (prefetch_recipients)
        # On the connection: a plain SELECT of columns, no need for the ORM's execute path.
        rows = session.connection().execute(_RECIPIENT_QUERY, {"user_id": ref.user_id}).all()
    row = rows[0] if rows else None
    beat, connected = presence.overlay(ref.user_id, now) if presence is not None else (None, False)
    tz = ref.timezone or (row.timezone if row else None) or "UTC"
    day, week = in_app_counts(session, ref.user_id, tz, now) if counts else (0, 0)
    if row is None:
        return RecipientFacts(
            user_id=ref.user_id, email=ref.email, phone=ref.phone, timezone=tz,
            last_heartbeat_at=beat, connected=connected,
            in_app_count_day=day, in_app_count_week=week,
        )
    return RecipientFacts(
        user_id=row.user_id,
        email=ref.email or row.email,
        email_valid=True if ref.email else row.email_valid,
        phone=ref.phone or row.phone,
        phone_valid=True if ref.phone else row.phone_valid,
        devices=tuple(PolicyDevice(token=r.token, platform=r.platform, active=r.active)
                      for r in rows if r.token is not None),
        consents={k: v for k, v in (row.consents or {}).items() if v is not None},
        timezone=tz,
        quiet_hours=tuple(row.quiet_hours) if row.quiet_hours else None,
        last_active_at=row.last_active_at,
        last_heartbeat_at=max(filter(None, (row.last_heartbeat_at, beat)), default=None),
        connected=connected,
        in_app_count_day=day,
        in_app_count_week=week,
        preferences=row.preferences or {},
    )


def with_in_app_counts(session: Session, facts: RecipientFacts, now: datetime) -> RecipientFacts:
    day, week = in_app_counts(session, facts.user_id, facts.timezone, now)
    return replace(facts, in_app_count_day=day, in_app_count_week=week)


def message_facts(req: SendRequest) -> MessageFacts:
    content = req.content
    if content.channels is not None:
        return _per_channel_facts(req)
    return MessageFacts(
        category=req.category,
        urgency=req.urgency.value,
        title=content.title,
        body=content.body,
        expires_at=req.expires_at,
        has_rich_media=bool(content.image_url),
        sms_text=sms_text(content.title or "", content.body or ""),  # what the SMS provider sends
    )


def _per_channel_facts(req: SendRequest) -> MessageFacts:
    """Facts of per-channel content: segments on the SMS text as the SMS channel renders it,
    size of the largest channel's title and body, rich media if any channel has an image."""
    stored = req.content.model_dump(exclude_none=True)
    per_channel = {ch: for_channel(stored, ch) for ch in CHANNEL_FIELDS}
    sms = per_channel[Channel.SMS]
    return MessageFacts(
        category=req.category,
        urgency=req.urgency.value,
        title=req.content.title,
        body=req.content.body,
        expires_at=req.expires_at,
        has_rich_media=any(c["image_url"] for c in per_channel.values()),
        content_bytes=max(len(c["title"].encode()) + len(c["body"].encode()) for c in per_channel.values()),
        sms_text=sms_text(sms["title"], sms["body"]),
    )
