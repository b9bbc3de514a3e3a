"""API keys: shown once, stored as a SHA-256 hash, scoped. Keys are 32 random bytes, so a
fast hash is enough (no dictionary to guess from); the prefix finds the row without a scan.
The same scheme hashes the per-user in-app tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .domain.statuses import Scope
from .errors import ApiError, ErrorCode
from .storage.models import ApiKey

KEY_PREFIX = "ok_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(raw: str | Iterable[str]) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = [s.strip() for s in items if s.strip()]
    unknown = [s for s in scopes if s not in Scope._value2member_map_]
    if unknown:
        valid = ", ".join(s.value for s in Scope)
        raise ValueError(f"unknown scope(s) {', '.join(unknown)}; valid scopes: {valid}")
    return scopes


def create_api_key(session: Session, name: str, scopes: Iterable[str],
                   callback_url: str | None = None) -> tuple[ApiKey, str]:
    """Returns the row and the plaintext key; the plaintext is never stored."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    plaintext = f"{KEY_PREFIX}{prefix}_{secret}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        key_hash=hash_secret(plaintext),
        scopes=",".join(parse_scopes(scopes)),
        callback_url=callback_url,
        callback_secret=secrets.token_hex(32) if callback_url else None,
    )
    session.add(key)
    session.flush()
    return key, plaintext


def authenticate(session: Session, header: str | None) -> ApiKey:
    if not header or not header.startswith("Bearer "):
        raise ApiError(401, ErrorCode.UNAUTHORIZED,
                       "missing API key: send 'Authorization: Bearer <key>'", field="Authorization")
    token = header.removeprefix("Bearer ").strip()
    parts = token.removeprefix(KEY_PREFIX).split("_", 1)
    if not token.startswith(KEY_PREFIX) or len(parts) != 2:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "malformed API key", field="Authorization")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[0]))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(
        key.key_hash, hash_secret(token)
    ):
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "unknown or revoked API key", field="Authorization")
    return key


def require_scope(*scopes: Scope) -> Callable:
    """Route decorator: authenticates and checks that the key holds one of `scopes`
    (or `admin`). The key is available as `g.api_key`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            from .app_state import state  # late import: the app factory builds the state

            with state().db.session_factory() as session:  # read-only: nothing to commit
                key = authenticate(session, request.headers.get("Authorization"))
            held = key.scope_set
            if Scope.ADMIN not in held and not held.intersection(s.value for s in scopes):
                need = " or ".join(s.value for s in scopes)
                raise ApiError(403, ErrorCode.FORBIDDEN, f"this API key lacks the '{need}' scope",
                               field="Authorization")
            g.api_key = key
            return view(*args, **kwargs)

        return wrapper

    return decorator
