"""CORS for the in-app client routes only (inbox, stream, engagement): a product's web app
on another origin calls them with a user token. API-key routes never answer cross-origin.
No cookies are involved (the token travels in a header or the stream's query), so
credentials are never allowed."""

from __future__ import annotations

from collections.abc import Iterable

ALLOW_METHODS = "GET, POST, PUT, DELETE, OPTIONS"  # PUT: the preference center; DELETE: push devices
ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID"
MAX_AGE = "600"


def allowed_origin(origin: str | None, allowed: Iterable[str]) -> str | None:
    """The value for Access-Control-Allow-Origin, or None when the origin is not allowed."""
    if not origin:
        return None
    allowed = tuple(allowed)
    if "*" in allowed:
        return "*"
    return origin if origin.rstrip("/") in allowed else None


def headers(origin: str | None, allowed: Iterable[str], *, preflight: bool = False) -> dict[str, str]:
    value = allowed_origin(origin, allowed)
    if value is None:
        return {}
    out = {"Access-Control-Allow-Origin": value, "Vary": "Origin"}
    if preflight:
        out.update({"Access-Control-Allow-Methods": ALLOW_METHODS, "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE})
    return out
