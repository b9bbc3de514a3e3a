"""Cursor pagination for every list route: `?limit=` (default and maximum per route) and
`?cursor=` (opaque), answered with the page and `next_cursor` (null on the last page).

Keyset, not offsets: the cursor is the sort key of the last row shown (e.g. created_at and
id), base64url-encoded JSON, so a page costs an index range scan however deep it is, and rows
inserted meanwhile neither repeat nor vanish. The inbox (inapp/inbox.py Position) works the
same way with its own compact cursor. Written by hand: keyset paging is a few lines on top of
SQLAlchemy, and a library for it (e.g. sqlakeyset) would bring its own cursor format and
errors, where every list here must answer a bad cursor or limit with this API's 422."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import request
from sqlalchemy import and_, or_

from ..errors import ApiError, ErrorCode
from ..schemas import MAX_YEAR, MIN_YEAR

MAX_CURSOR_CHARS = 1000
MAX_KEY_CHARS = 300


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: tuple | None  # the sort key of the last row of the previous page


class Pager:
    """A route's paging: its sort columns (a unique key, last column the tie-breaker), their
    Python types (datetime, int or str), the direction and the limits."""

    def __init__(self, columns: tuple, kinds: tuple[type, ...], *, descending: bool = True,
                 default_limit: int = 50, max_limit: int = 200) -> None:
        self.columns = columns
        self.kinds = kinds
        self.descending = descending
        self.default_limit = default_limit
        self.max_limit = max_limit

    # -- request ------------------------------------------------------------------------
    def from_request(self) -> PageRequest:
        limit = limit_arg(self.default_limit, self.max_limit)
        cursor = request.args.get("cursor")
        return PageRequest(limit, self.decode(cursor) if cursor else None)

    # -- cursor -------------------------------------------------------------------------
    def encode(self, key: tuple) -> str:
        values = [v.astimezone(UTC).isoformat() if isinstance(v, datetime) else v for v in key]
        return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")

    def decode(self, text: str) -> tuple:
        bad = ApiError(422, ErrorCode.VALIDATION_ERROR,
                       "cursor: not a cursor from this list; pass next_cursor back unchanged", field="cursor")
        if len(text) > MAX_CURSOR_CHARS:
            raise bad
        try:
            values = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        except (ValueError, binascii.Error, orjson.JSONDecodeError):
            raise bad from None
        if not isinstance(values, list) or len(values) != len(self.kinds):
            raise bad
        key = []
        for value, kind in zip(values, self.kinds, strict=True):
            if kind is datetime:
                value = _cursor_datetime(value)
            elif kind is int:
                value = value if type(value) is int and abs(value) < 2**62 else None
            elif not (isinstance(value, str) and len(value) <= MAX_KEY_CHARS and "\x00" not in value):
                value = None
            if value is None:
                raise bad
            key.append(value)
        return tuple(key)

    # -- query --------------------------------------------------------------------------
    def apply(self, query, page: PageRequest):
        """Orders `query` by the key, starts after the cursor and fetches one row more than
        the page (which says whether there is a next page)."""
        if page.after is not None:
            query = query.where(self._after(page.after))
        order = [c.desc() if self.descending else c.asc() for c in self.columns]
        return query.order_by(*order).limit(page.limit + 1)

    def _after(self, key: tuple):
        # (a, b) < (x, y) spelled out: row values compare differently per dialect for typed columns.
        clauses = []
        for i, column in enumerate(self.columns):
            beyond = column < key[i] if self.descending else column > key[i]
            clauses.append(and_(*(self.columns[j] == key[j] for j in range(i)), beyond))
        return or_(*clauses)

    def finish(self, rows: list, page: PageRequest, key) -> tuple[list, str | None]:
        """The page's rows and the cursor of the next page; `key(row)` is a row's sort key."""
        more = len(rows) > page.limit
        rows = rows[:page.limit]
        return rows, (self.encode(key(rows[-1])) if more and rows else None)


def limit_arg(default: int, maximum: int) -> int:
    """`?limit=`: a whole number from 1 to `maximum`, `default` when absent, else a 422."""
    raw = request.args.get("limit")
    if raw is None:
        return default
    text = raw.strip()
    limit = int(text) if text.isascii() and text.isdigit() and len(text) < 7 else 0
    if not 1 <= limit <= maximum:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"limit: a whole number from 1 to {maximum}", field="limit")
    return limit


def _cursor_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None
    return parsed


def iso_datetime_arg(name: str) -> datetime | None:
    """An ISO 8601 query parameter with a timezone offset, or None when absent."""
    raw = request.args.get(name)
    if raw is None:
        return None
    text = raw.strip().replace("Z", "+00:00")
    if text.count(" ") == 1 and "T" in text:  # an unencoded "+01:00" arrives as " 01:00"
        text = text.replace(" ", "+")
    try:
        value = datetime.fromisoformat(text) if len(text) <= 40 else None
    except ValueError:
        value = None
    if value is None:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: not an ISO 8601 datetime: {raw[:60]!r}",
                       field=name)
    if value.tzinfo is None:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                       f"{name}: needs a timezone offset, e.g. 2026-01-01T09:00:00Z", field=name)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_YEAR <= utc.year <= MAX_YEAR:
        raise ApiError(422, ErrorCode.DATE_OUT_OF_RANGE,
                       f"{name}: must be between {MIN_YEAR} and {MAX_YEAR} (UTC)", field=name)
    return value


def reject_unknown_args(allowed: set[str]) -> None:
    for name in request.args:
        if name not in allowed:
            known = ", ".join(sorted(allowed))
            raise ApiError(422, ErrorCode.VALIDATION_ERROR,
                           f"{name[:60]}: not a parameter of this list; known: {known}", field=name[:60])
