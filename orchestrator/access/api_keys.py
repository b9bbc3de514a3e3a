"""Listing and revoking API keys, for the CLI and the admin API alike. A listing never
shows the secret or its hash; a revocation is audited like a change of scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..audit import log as audit
from ..storage.models import ApiKey


class UnknownKey(LookupError):
    pass


def key_dict(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "scopes": sorted(key.scope_set),
        "created_at": key.created_at.isoformat() if key.created_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
        "rate_limit_per_minute": key.rate_limit_per_minute,
    }


def list_keys(session: Session) -> list[dict[str, Any]]:
    return [key_dict(k) for k in session.scalars(keys_query().order_by(ApiKey.created_at, ApiKey.id))]


def keys_query():
    """Every key (the caller orders and pages)."""
    return select(ApiKey)


def revoke(session: Session, key_id: str, *, actor: str, reason: str, now: datetime) -> tuple[ApiKey, bool]:
    """Revokes the key (once); returns it and whether this call revoked it. Callers announce
    the change after commit (key_sync.KeyCacheSync.changed) so every process drops the key."""
    key = session.get(ApiKey, key_id)
    if key is None:
        raise UnknownKey(key_id)
    if key.revoked_at is not None:
        return key, False
    key.revoked_at = now
    audit.append(session, actor=actor, action=audit.AuditAction.KEY_REVOKE, subject=f"key:{key.id}",
                 detail={"name": key.name, "scopes": sorted(key.scope_set)}, reason=reason, now=now)
    return key, True


KEY_RATE_LIMIT_ACTION = "key.rate_limit"
MAX_RATE_LIMIT_PER_MINUTE = 1_000_000


def set_rate_limit(session: Session, key_id: str, per_minute: int | None, *, actor: str, reason: str,
                   now: datetime) -> ApiKey:
    """The key's own requests-per-minute (None: back to RATE_LIMIT_PER_MINUTE), audited.
    Callers announce the change after commit (key_sync.KeyCacheSync.changed)."""
    if per_minute is not None and not 1 <= per_minute <= MAX_RATE_LIMIT_PER_MINUTE:
        raise ValueError(f"rate_limit_per_minute: a whole number from 1 to {MAX_RATE_LIMIT_PER_MINUTE}, or null")
    key = session.get(ApiKey, key_id)
    if key is None:
        raise UnknownKey(key_id)
    before = key.rate_limit_per_minute
    key.rate_limit_per_minute = per_minute
    audit.append(session, actor=actor, action=KEY_RATE_LIMIT_ACTION, subject=f"key:{key.id}",
                 detail={"name": key.name, "before": before, "after": per_minute}, reason=reason, now=now)
    return key
