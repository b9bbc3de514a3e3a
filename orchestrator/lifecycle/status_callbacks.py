"""Status callbacks recorded with the status change that causes them: a `status_callbacks`
row in the same transaction, announced after commit (storage.db.announce_callback); the
dispatcher posts it (dispatch/callbacks.py) and the sweeper retries what is due."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..storage.db import announce_callback
from ..storage.models import ApiKey, Message, StatusCallback


class CallbackState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


_CALLBACK_URLS: dict[str, tuple[float, str | None]] = {}
CALLBACK_URL_TTL = 5.0  # seconds: a changed callback URL applies within this, like key scopes


def _callback_url(session: Session, api_key_id: str) -> str | None:
    """The key's callback URL, cached briefly: every status change of every message asks."""
    hit = _CALLBACK_URLS.get(api_key_id)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    url = session.scalar(select(ApiKey.callback_url).where(ApiKey.id == api_key_id))
    if len(_CALLBACK_URLS) > 10_000:
        _CALLBACK_URLS.clear()
    _CALLBACK_URLS[api_key_id] = (time.monotonic() + CALLBACK_URL_TTL, url)
    return url


def record_status_change(session: Session, message: Message, previous: str, now: datetime) -> None:
    if not message.api_key_id:
        return
    url = _callback_url(session, message.api_key_id)
    if not url:
        return
    callback = StatusCallback(
        api_key_id=message.api_key_id, message_id=message.id, url=url, state=CallbackState.PENDING,
        due_at=now, created_at=now,
        payload={"type": "message.status", "message_id": message.id, "status": message.status,
                 "previous_status": previous, "category": message.category, "at": now.isoformat()},
    )
    session.add(callback)
    session.flush()
    announce_callback(session, callback.id)
