"""Status webhooks to the product backend. Each message status change becomes a row in
`status_callbacks` (written in the same transaction as the change, by
lifecycle/status_callbacks.py), posted from here as JSON signed
with HMAC-SHA256 over "<timestamp>.<body>", and retried with backoff on 5xx, 429 and
network errors — not on other 4xx, which say the receiver will never take it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime, timedelta

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from .. import metrics
from ..domain.statuses import CallbackOutcome
from ..lifecycle.status_callbacks import CallbackState
from ..logs import task_headers
from ..storage.models import ApiKey, StatusCallback
from .backoff import backoff_seconds

log = logging.getLogger("orchestrator.callbacks")

SIGNATURE_HEADER = "X-Orchestrator-Signature"
TIMESTAMP_HEADER = "X-Orchestrator-Timestamp"
MAX_TRIES = 10
LEASE = timedelta(seconds=30)
TIMEOUT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 600


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def enqueue(callback_id: int) -> None:
    from .celery_app import deliver_callback_task

    try:
        deliver_callback_task.apply_async(args=(callback_id,), retry=False, headers=task_headers() or None)
    except Exception:  # noqa: BLE001 - the sweeper delivers due callbacks too
        log.warning("callback enqueue failed; the sweeper will retry", exc_info=True)


def due_callbacks(session: Session, now: datetime, limit: int = 200) -> list[int]:
    return list(session.scalars(select(StatusCallback.id).where(
        StatusCallback.state == CallbackState.PENDING, StatusCallback.due_at <= now,
        or_(StatusCallback.lease_until.is_(None), StatusCallback.lease_until < now),
    ).order_by(StatusCallback.due_at).limit(limit)))


def _retryable(status: int | None) -> bool:
    return status is None or status == 429 or status >= 500


def deliver(db, callback_id: int, now: datetime, client: httpx.Client | None = None) -> CallbackOutcome:
    with db.session() as session:
        claimed = session.execute(
            update(StatusCallback).where(
                StatusCallback.id == callback_id, StatusCallback.state == CallbackState.PENDING,
                StatusCallback.due_at <= now,
                or_(StatusCallback.lease_until.is_(None), and_(StatusCallback.lease_until < now)),
            ).values(lease_until=now + LEASE, tries=StatusCallback.tries + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            return CallbackOutcome.NOT_CLAIMED
        cb = session.get(StatusCallback, callback_id)
        secret = session.scalar(select(ApiKey.callback_secret).where(ApiKey.id == cb.api_key_id)) or ""
        url, payload, tries = cb.url, cb.payload, cb.tries
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(now.timestamp()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: sign(secret, timestamp, body)}
    status: int | None = None
    error = ""
    try:
        if client is None:
            with httpx.Client(timeout=TIMEOUT_SECONDS) as own:
                status = own.post(url, content=body, headers=headers).status_code
        else:
            status = client.post(url, content=body, headers=headers).status_code
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}"
    with db.session() as session:
        cb = session.get(StatusCallback, callback_id)
        cb.lease_until = None
        if status is not None and 200 <= status < 300:
            cb.state, cb.delivered_at, cb.last_error = CallbackState.DELIVERED, now, None
            return CallbackOutcome.DELIVERED
        cb.last_error = f"HTTP {status}" if status is not None else error
        if _retryable(status) and tries < MAX_TRIES:
            cb.due_at = now + timedelta(seconds=backoff_seconds(tries, cap=MAX_BACKOFF_SECONDS))
            metrics.CALLBACK_FAILURES.labels(metrics.CallbackFailure.RETRY).inc()
            log.warning("status callback failed; will retry", extra={"message_id": cb.message_id,
                                                                    "error_code": cb.last_error})
            return CallbackOutcome.RETRY_LATER
        cb.state = CallbackState.FAILED
        metrics.CALLBACK_FAILURES.labels(metrics.CallbackFailure.FAILED).inc()
        log.warning("status callback failed for good", extra={"message_id": cb.message_id,
                                                             "error_code": cb.last_error})
        return CallbackOutcome.FAILED
