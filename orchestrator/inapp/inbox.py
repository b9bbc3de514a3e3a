"""Every query of the inbox (in-app attempts as the user sees them) in one place: the
Flask inbox routes and the event-loop stream both read through here.

An inbox item is an in-app attempt that was sent (visible) or delivered (shown on a
stream), not archived. Pages are ordered newest first by (sent_at, id); a cursor is that
pair, opaque to clients. The stream resumes by the same pair (its SSE event id)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from providers.base import AttemptStatus, Channel

from ..content.channels import for_channel
from ..storage.models import Attempt, Confirmation, Message

VISIBLE = (AttemptStatus.SENT, AttemptStatus.DELIVERED)
# The same as `Attempt.status.in_(VISIBLE)` with plain binds: an IN list is expanded into the
# SQL on every execution, a visible cost on the stream's reads (two per item per user).
_IS_VISIBLE = or_(*(Attempt.status == status for status in VISIBLE))
# A stream resuming from an event id re-reads this far back, because a worker stamps
# `sent_at` before its commit: an item committed late can carry an earlier time than one
# already shown. Clients drop ids they have (the bundled client does).
RESUME_OVERLAP = timedelta(seconds=10)
STREAM_BATCH = 100


class CursorError(ValueError):
    """A cursor or event id that is not one of ours."""


@dataclass(frozen=True)
class Position:
    """(sent_at, attempt id): where an item sits in the user's timeline."""

    at: datetime
    id: str

    def encode(self) -> str:
        raw = f"{int(self.at.timestamp() * 1_000_000)}.{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            micros, attempt_id = raw.split(".", 1)
            at = datetime.fromtimestamp(int(micros) / 1_000_000, UTC)
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
            raise CursorError(text) from None
        if not is_item_id(attempt_id):
            raise CursorError(text)
        return cls(at, attempt_id)


# A legal notice (a Confirmation row) needs a tracked acknowledgement: "read all" leaves it.
_REQUIRES_ACK = Confirmation.message_id.is_not(None).label("requires_acknowledgement")
_COLUMNS = (Attempt.id, Attempt.message_id, Attempt.status, Attempt.sent_at, Attempt.created_at,
            Attempt.seen_at, Attempt.read_at, Attempt.clicked_at, Attempt.acknowledged_at,
            Attempt.archived_at, Attempt.quiet, Message.category, Message.content, _REQUIRES_ACK)


def _base(user_id: str, *, archived: bool = False):
    """Visible in-app items of the user; archived ones only when asked (a changed item may be
    an archived one). The outer join is on the confirmations primary key: one index probe per
    row, no N+1."""
    query = (select(*_COLUMNS).join(Message, Message.id == Attempt.message_id)
             .outerjoin(Confirmation, Confirmation.message_id == Attempt.message_id)
             .where(Attempt.user_id == user_id, Attempt.channel == Channel.IN_APP, _IS_VISIBLE))
    return query if archived else query.where(Attempt.archived_at.is_(None))


def entry(row: Any) -> dict[str, Any]:
    content = for_channel(row.content, Channel.IN_APP)  # the in-app variant of per-channel content
    at = row.sent_at or row.created_at
    return {
        "id": row.id, "message_id": row.message_id, "category": row.category,
        "title": content.get("title", ""), "body": content.get("body", ""),
        "action_url": content.get("action_url"), "image_url": content.get("image_url"),
        "created_at": at.isoformat(),
        "seen_at": _iso(row.seen_at), "read_at": _iso(row.read_at),
        "clicked_at": _iso(row.clicked_at), "acknowledged_at": _iso(row.acknowledged_at),
        "archived_at": _iso(row.archived_at),
        # Only opening it or acknowledging it marks it; "read all" does not (POST …/acknowledged).
        "requires_acknowledgement": bool(row.requires_acknowledgement),
        # Quiet: over the in-app cap; clients list it and count it unread, but show no toast.
        "quiet": bool(row.quiet),
    }


def client_entry(row: Any, category_label: str) -> dict[str, Any]:
    """What a client is sent of an item: entry() with the category's human label in the
    client's locale (policies/labels.py)."""
    out = entry(row)
    out["category_label"] = category_label
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def position(row: Any) -> Position:
    return Position(row.sent_at or row.created_at, row.id)


def page(session: Session, user_id: str, limit: int, cursor: Position | None = None
         ) -> tuple[list[Any], Position | None]:
    """Newest first; returns the rows and the cursor of the next page (None at the end)."""
    query = _base(user_id)
    if cursor is not None:
        query = query.where(or_(Attempt.sent_at < cursor.at,
                                and_(Attempt.sent_at == cursor.at, Attempt.id < cursor.id)))
    rows = session.execute(query.order_by(Attempt.sent_at.desc(), Attempt.id.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (position(rows[-1]) if more and rows else None)


def unread_count(session: Session, user_id: str) -> int:
    """The user's total of unread items, whatever page the client shows."""
    return session.connection().execute(_UNREAD, {"user_id": user_id}).scalar() or 0


_UNREAD = select(func.count()).select_from(Attempt).where(
    Attempt.user_id == bindparam("user_id"), Attempt.channel == Channel.IN_APP, _IS_VISIBLE,
    Attempt.archived_at.is_(None), Attempt.read_at.is_(None))


def for_stream(session: Session, user_id: str, since: Position | None) -> list[Any]:
    """What a stream shows next, oldest first: every item not yet shown on any stream
    (status `sent`), plus, when resuming, everything after the client's last event."""
    # On the connection: plain column SELECTs, no need for the ORM's execute path.
    conn = session.connection()
    if since is None:
        return conn.execute(_FOR_STREAM_NEW, {"user_id": user_id}).all()
    return conn.execute(_FOR_STREAM_SINCE, {"user_id": user_id, "since": since.at - RESUME_OVERLAP}).all()


# Built once: every wake-up of every stream runs one of these.
_FOR_STREAM_NEW = (_base(bindparam("user_id")).where(Attempt.status == AttemptStatus.SENT)
                   .order_by(Attempt.sent_at, Attempt.id).limit(STREAM_BATCH))
_FOR_STREAM_SINCE = (_base(bindparam("user_id"))
                     .where(or_(Attempt.status == AttemptStatus.SENT, Attempt.sent_at >= bindparam("since")))
                     .order_by(Attempt.sent_at, Attempt.id).limit(STREAM_BATCH))


def is_item_id(text: str) -> bool:
    """An inbox item id as we issue them (a ULID); anything else is no item of ours and
    never reaches a query (a NUL byte would make PostgreSQL refuse the statement)."""
    return 0 < len(text) <= 26 and text.isascii() and text.isalnum()


def find_item(session: Session, user_id: str, attempt_id: str) -> Any | None:
    """The user's in-app item with this id, whatever its status (None if not theirs)."""
    if not is_item_id(attempt_id):
        return None
    return session.execute(select(Attempt.id, Attempt.message_id, Attempt.status, Attempt.archived_at)
                           .where(Attempt.id == attempt_id, Attempt.user_id == user_id,
                                  Attempt.channel == Channel.IN_APP)).first()


def archive(session: Session, user_id: str, attempt_id: str, now: datetime) -> bool:
    """Archives a visible item: it leaves the list and the unread count. Returns False when
    the user has no such visible item; archiving twice keeps the first time."""
    result = session.execute(update(Attempt).where(
        Attempt.id == attempt_id, Attempt.user_id == user_id, Attempt.channel == Channel.IN_APP,
        Attempt.status.in_(VISIBLE)).values(archived_at=func.coalesce(Attempt.archived_at, now))
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


def unread_items(session: Session, user_id: str) -> list[Any]:
    """(id, message_id, requires_acknowledgement) of every unread visible item, oldest first:
    what read-all marks, except the items that require acknowledgement."""
    return session.execute(
        select(Attempt.id, Attempt.message_id, _REQUIRES_ACK)
        .outerjoin(Confirmation, Confirmation.message_id == Attempt.message_id).where(
            Attempt.user_id == user_id, Attempt.channel == Channel.IN_APP, Attempt.status.in_(VISIBLE),
            Attempt.archived_at.is_(None), Attempt.read_at.is_(None))
        .order_by(Attempt.sent_at, Attempt.id)).all()


def changed_items(session: Session, user_id: str, ids: list[str]) -> list[Any]:
    """The user's shown items with these ids, archived ones included, oldest first: what a
    stream sends as `item` events after their state changed."""
    ids = [i for i in ids if is_item_id(i)][:MAX_CHANGED]
    if not ids:
        return []
    query = _base(user_id, archived=True).where(Attempt.id.in_(ids)).order_by(Attempt.sent_at, Attempt.id)
    return session.execute(query).all()


MAX_CHANGED = 500  # ids read at once (one bus notice carries at most as many)
