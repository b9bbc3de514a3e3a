"""Per-user tokens for the in-app client. The product backend asks for one with its API
key and hands it to the user's app; the app never sees the API key."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from flask import request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..auth import hash_secret
from ..errors import ApiError, ErrorCode
from ..storage.models import InAppToken

TOKEN_PREFIX = "ut_"


def issue(session: Session, user_id: str, now: datetime, ttl_seconds: int) -> tuple[str, datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + timedelta(seconds=ttl_seconds)
    session.add(InAppToken(token_hash=hash_secret(token), user_id=user_id, expires_at=expires, created_at=now))
    return token, expires


def _request_token() -> str | None:
    """The request's in-app token: the header, or the `token` query parameter for
    EventSource, which cannot set headers."""
    header = request.headers.get("Authorization", "")
    return header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.args.get("token")


def request_token_hash() -> str:
    return hash_secret(_request_token() or "")


def still_valid(session: Session, token_hash: str, now: datetime) -> bool:
    row = session.get(InAppToken, token_hash)
    return row is not None and row.expires_at > now


def user_for_request(session: Session, now: datetime) -> str:
    """The user behind the request's in-app token."""
    token = _request_token()
    if not token or not token.startswith(TOKEN_PREFIX):
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "missing in-app user token", field="Authorization")
    row = session.scalar(select(InAppToken).where(InAppToken.token_hash == hash_secret(token)))
    if row is None or row.expires_at <= now:
        raise ApiError(401, ErrorCode.UNAUTHORIZED, "unknown or expired in-app user token", field="Authorization")
    return row.user_id
