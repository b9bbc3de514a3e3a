"""Builds the policy's inputs from what the database knows (plus per-message overrides).
The policy engine never reads the database; this module is the only bridge."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, joinedload

from policies import Device as PolicyDevice
from policies import MessageFacts, RecipientFacts
from providers.base import Channel

from ..schemas import RecipientRef, SendRequest
from ..storage.models import Attempt, Recipient


def load_recipient(session: Session, user_id: str) -> Recipient | None:
    return session.scalars(
        select(Recipient).where(Recipient.user_id == user_id).options(joinedload(Recipient.devices))
    ).unique().one_or_none()


def in_app_counts(session: Session, user_id: str, tz: str, now: datetime) -> tuple[int, int]:
    """In-app messages shown to the user today (in their timezone) and in the last 7 days."""
    local_midnight = now.astimezone(ZoneInfo(tz)).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = now - timedelta(days=7)
    day_start = local_midnight.astimezone(now.tzinfo)
    since = min(week_start, day_start)
    day, week = session.execute(
        select(func.count(case((Attempt.sent_at >= day_start, 1))),
               func.count(case((Attempt.sent_at >= week_start, 1))))
        .where(Attempt.user_id == user_id, Attempt.channel == Channel.IN_APP, Attempt.sent_at >= since)
    ).one()
    return day or 0, week or 0


def recipient_facts(session: Session, ref: RecipientRef, now: datetime, presence=None) -> RecipientFacts:
    """`presence` (inapp.presence) adds what the database row cannot know: a heartbeat kept
    in Redis and whether a live stream is open right now."""
    row = load_recipient(session, ref.user_id)
    beat, connected = presence.overlay(ref.user_id, now) if presence is not None else (None, False)
    tz = ref.timezone or (row.timezone if row else None) or "UTC"
    day, week = in_app_counts(session, ref.user_id, tz, now)
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
        devices=tuple(PolicyDevice(token=d.token, platform=d.platform, active=d.active) for d in row.devices),
        consents={k: v for k, v in (row.consents or {}).items() if v is not None},
        timezone=tz,
        quiet_hours=tuple(row.quiet_hours) if row.quiet_hours else None,
        last_active_at=row.last_active_at,
        last_heartbeat_at=max(filter(None, (row.last_heartbeat_at, beat)), default=None),
        connected=connected,
        in_app_count_day=day,
        in_app_count_week=week,
    )


def message_facts(req: SendRequest) -> MessageFacts:
    content = req.content
    return MessageFacts(
        category=req.category,
        urgency=req.urgency.value,
        title=content.title,
        body=content.body,
        expires_at=req.expires_at,
        has_rich_media=bool(content.image_url),
    )
