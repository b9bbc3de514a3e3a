"""API keys: shown once, stored as a SHA-256 hash, scoped. Keys are 32 random bytes, so a
fast hash is enough (no dictionary to guess from); the prefix finds the row without a scan.
The same scheme hashes the per-user in-app tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from flask import g, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import rate_limits
from ..domain.errors import ErrorCode, Forbidden, Unauthenticated
from ..domain.statuses import Scope
from ..storage.models import ApiKey

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


@dataclass(frozen=True)
class KeyIdentity:
    """What a request needs of its API key; a snapshot, safe to cache and share."""

    id: str
    name: str
    scope_set: frozenset[str]
    callback_url: str | None = None
    rate_limit_per_minute: int | None = None  # None: the service default


_UNKNOWN = object()


class KeyCache:
    """API key lookups by token, kept for `ttl` seconds: the accept path reads nothing from
    the database to authenticate. Unknown tokens are cached too, so a flood of bad keys does
    not reach the database either. A revoked, re-scoped or re-limited key is dropped with
    `forget` (access/key_sync.py calls it in every process, through Redis when REDIS_URL is set);
    `ttl` bounds how long a change can go unseen when no such word arrives."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000, clock=time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._entries: dict[str, tuple[float, object]] = {}
        self._lock = threading.Lock()
        # Bumped by every forget/clear: a lookup read from the database before a change and
        # stored after it would keep the old key for a whole `ttl`; `put` drops it instead.
        self.generation = 0

    def get(self, token_hash: str) -> object:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] <= self.clock():
            return _UNKNOWN
        return entry[1]

    def put(self, token_hash: str, identity: KeyIdentity | None, generation: int | None = None) -> None:
        """Keeps a lookup made when `self.generation` was `generation` (None: now)."""
        with self._lock:
            if generation is not None and generation != self.generation:
                return  # the key may have changed since it was read
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[token_hash] = (self.clock() + self.ttl, identity)

    def forget(self, key_id: str) -> None:
        """Drops every lookup of that key: the next request reads it again."""
        with self._lock:
            self.generation += 1
            stale = [h for h, (_, ident) in self._entries.items()
                     if isinstance(ident, KeyIdentity) and ident.id == key_id]
            for token_hash in stale:
                del self._entries[token_hash]

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


def _split(header: str | None) -> tuple[str, str]:
    if not header or not header.startswith("Bearer "):
        raise Unauthenticated(ErrorCode.UNAUTHORIZED,
                              "missing API key: send 'Authorization: Bearer <key>'", field="Authorization")
    token = header.removeprefix("Bearer ").strip()
    parts = token.removeprefix(KEY_PREFIX).split("_", 1)
    if not token.startswith(KEY_PREFIX) or len(parts) != 2:
        raise Unauthenticated(ErrorCode.UNAUTHORIZED, "malformed API key", field="Authorization")
    return token, parts[0]


def _unknown() -> Unauthenticated:
    return Unauthenticated(ErrorCode.UNAUTHORIZED, "unknown or revoked API key", field="Authorization")


def authenticate(session: Session, header: str | None) -> ApiKey:
    token, prefix = _split(header)
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None or key.revoked_at is not None or not hmac.compare_digest(
        key.key_hash, hash_secret(token)
    ):
        raise _unknown()
    return key


def identify(db, cache: KeyCache, header: str | None) -> KeyIdentity:
    """The key behind an Authorization header, through the cache."""
    token, prefix = _split(header)
    token_hash = hash_secret(token)
    cached = cache.get(token_hash)
    if cached is _UNKNOWN:
        generation = cache.generation  # before the read: a change during it discards the result
        with db.session_factory() as session:  # read-only: nothing to commit
            row = session.execute(select(ApiKey.id, ApiKey.name, ApiKey.scopes, ApiKey.callback_url,
                                         ApiKey.key_hash, ApiKey.revoked_at, ApiKey.rate_limit_per_minute)
                                  .where(ApiKey.prefix == prefix)).first()
        ok = row is not None and row.revoked_at is None and hmac.compare_digest(row.key_hash, token_hash)
        cached = KeyIdentity(row.id, row.name, frozenset(s for s in row.scopes.split(",") if s),
                             row.callback_url, row.rate_limit_per_minute) if ok else None
        cache.put(token_hash, cached, generation)
    if cached is None:
        raise _unknown()
    return cached  # type: ignore[return-value]


def holds_scope(key: KeyIdentity, scope: Scope) -> bool:
    """Whether the key holds `scope` (`admin` holds every scope)."""
    return Scope.ADMIN.value in key.scope_set or scope.value in key.scope_set


def require_scope(*scopes: Scope) -> Callable:
    """Route decorator: authenticates and checks that the key holds one of `scopes`
    (or `admin`). The key is available as `g.api_key`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            from ..app_state import state  # late import: the app factory builds the state

            st = state()
            key = identify(st.db, st.key_cache, request.headers.get("Authorization"))
            rate_limits.enforce(key.id, key.rate_limit_per_minute)
            if not any(holds_scope(key, s) for s in scopes):
                need = " or ".join(s.value for s in scopes)
                raise Forbidden(ErrorCode.FORBIDDEN, f"this API key lacks the '{need}' scope",
                                field="Authorization")
            g.api_key = key
            return view(*args, **kwargs)

        wrapper.__required_scopes__ = tuple(s.value for s in scopes)  # read by api/openapi.py
        return wrapper

    return decorator
