"""Per-user tokens for the in-app client. The product backend asks for one with its API
key and hands it to the user's app; the app never sees the API key. Tokens are hashed like
keys, expire, and can be revoked one by one (by their public id) or all of a user's at once;
open streams of a revoked token are told through the in-app bus and close."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..access.auth import hash_secret
from ..domain.statuses import TokenState
from ..errors import ApiError, ErrorCode
from ..storage.models import InAppToken, new_id

TOKEN_PREFIX = "ut_"


@dataclass(frozen=True)
class TokenIdentity:
    user_id: str
    token_id: str | None
    token_hash: str
    expires_at: datetime


def issue(session: Session, user_id: str, now: datetime, ttl_seconds: int) -> tuple[str, datetime, str]:
    """Returns (plaintext token, expiry, token id); only the hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ttl_seconds)
    token_id = new_id()
    session.add(InAppToken(token_hash=hash_secret(token), id=token_id, user_id=user_id, expires_at=expires,
                           created_at=now))
    return token, expires, token_id


def token_from(authorization: str | None, query_token: str | None) -> str | None:
    """The request's in-app token: the header, or the `token` query parameter for
    EventSource, which cannot set headers."""
    header = authorization or ""
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else query_token


def identify(session: Session, token: str | None, now: datetime) -> TokenIdentity:
    """The user behind an in-app token; 401 if it is missing or unknown (`unauthorized`),
    expired (`token_expired`: the app asks for a new one) or revoked (`token_revoked`)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "missing in-app user token", field="Authorization")
    token_hash = hash_secret(token)
    row = session.execute(select(InAppToken.user_id, InAppToken.id, InAppToken.expires_at, InAppToken.revoked_at)
                          .where(InAppToken.token_hash == token_hash)).first()
    state = _state(row, now)
    if state is not TokenState.VALID:
        code, message = _REFUSALS[state]
        raise ApiError(401, code, message, field="Authorization")
    return TokenIdentity(row.user_id, row.id, token_hash, row.expires_at)


_REFUSALS = {
    TokenState.UNKNOWN: (ErrorCode.UNAUTHORIZED, "unknown in-app user token"),
    TokenState.EXPIRED: (ErrorCode.TOKEN_EXPIRED, "the in-app user token expired; ask the app's backend for a new one"),
    TokenState.REVOKED: (ErrorCode.TOKEN_REVOKED, "the in-app user token was revoked"),
}


def _state(row, now: datetime) -> TokenState:
    if row is None:
        return TokenState.UNKNOWN
    if row.revoked_at is not None:  # revoked wins: an expired token that was revoked stays revoked
        return TokenState.REVOKED
    return TokenState.EXPIRED if row.expires_at <= now else TokenState.VALID


def state_of(session: Session, token_hash: str, now: datetime) -> TokenState:
    """Where a token stands now (an open stream asks at expiry and on a revocation notice)."""
    row = session.execute(select(InAppToken.expires_at, InAppToken.revoked_at)
                          .where(InAppToken.token_hash == token_hash)).first()
    return _state(row, now)


def is_token_id(text: str) -> bool:
    """A token id as we issue them (a ULID). Anything else names no token and never reaches
    a query (a NUL byte would make PostgreSQL refuse the statement)."""
    return len(text) == 26 and text.isascii() and text.isalnum()


def revoke(session: Session, token_id: str, now: datetime) -> str | None:
    """Revokes one token by its id; returns its user id (None if there is no such token)."""
    if not is_token_id(token_id):
        return None
    user_id = session.scalar(select(InAppToken.user_id).where(InAppToken.id == token_id))
    if user_id is not None:
        session.execute(update(InAppToken).where(InAppToken.id == token_id, InAppToken.revoked_at.is_(None))
                        .values(revoked_at=now))
    return user_id


def revoke_user(session: Session, user_id: str, now: datetime) -> int:
    """Revokes every live token of a user; returns how many."""
    return session.execute(update(InAppToken).where(
        InAppToken.user_id == user_id, InAppToken.revoked_at.is_(None), InAppToken.expires_at > now,
    ).values(revoked_at=now)).rowcount


def user_for_request(session: Session, now: datetime) -> str:
    """Flask side: the user behind the current request's token."""
    from flask import request

    return identify(session, token_from(request.headers.get("Authorization"), request.args.get("token")),
                    now).user_id
