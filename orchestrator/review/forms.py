"""Text from the review pages' forms and query strings, checked in one place.

`%00` in a form or a query string arrives as NUL, which PostgreSQL cannot store in text (a
DataError, so a 500) and SQLite stores silently. The JSON API refuses it (providers/safe_json);
so does every page here, with the page's own error display and a 422 naming the field.
Over-long values are refused before they reach a query or the audit log. (Bytes that are not
UTF-8, a lone surrogate's `%ED%A0%80` for one, are kept by Werkzeug as the literal escapes, so
no lone surrogate or U+FFFD comes from decoding; the same pattern as the API's still applies.)"""

from __future__ import annotations

from datetime import date

from flask import request
from werkzeug.datastructures import MultiDict

from providers.safe_json import UNSTORABLE as _UNUSABLE

from ..errors import ApiError, ErrorCode
from ..schemas import MAX_YEAR, MIN_YEAR

# Version names, message ids and the like: far longer than any real one.
MAX_NAME_CHARS = 200


def text(values: MultiDict, name: str, *, max_chars: int = MAX_NAME_CHARS) -> str:
    """`values[name]` stripped ('' when absent); ApiError 422 naming `name` when it holds NUL (or
    a lone surrogate), or is longer than `max_chars`."""
    value = values.get(name, "").strip()
    if len(value) > max_chars:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: at most {max_chars} characters", field=name)
    if _UNUSABLE.search(value):
        raise ApiError(422, ErrorCode.INVALID_CHARACTER,
                       f"{name}: must not contain NUL (%00) characters", field=name)
    return value


def usable(value: str, *, max_chars: int = 2000) -> bool:
    """Whether `value` is text `text` would accept (for values that fall back to a default)."""
    return len(value) <= max_chars and not _UNUSABLE.search(value)


def form_text(name: str, *, max_chars: int = MAX_NAME_CHARS) -> str:
    return text(request.form, name, max_chars=max_chars)


def arg_text(name: str, *, max_chars: int = MAX_NAME_CHARS) -> str:
    return text(request.args, name, max_chars=max_chars)


def redisplay(name: str, *, max_chars: int) -> str:
    """The form's `name` as it may be shown back in the form after an error: cut to
    `max_chars`, without the characters `text` refuses."""
    return _UNUSABLE.sub("", request.form.get(name, "")[:max_chars])


def redisplay_arg(name: str, *, max_chars: int) -> str:
    """As `redisplay`, for a query string's `name` (a search form shown back with its error)."""
    return _UNUSABLE.sub("", request.args.get(name, "")[:max_chars])


def arg_day(name: str) -> date | None:
    """A `YYYY-MM-DD` query argument (None when empty), its year within what the databases store."""
    raw = arg_text(name, max_chars=40)
    if not raw:
        return None
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: not a date (YYYY-MM-DD): {raw!r}",
                       field=name) from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ApiError(422, ErrorCode.DATE_OUT_OF_RANGE, f"{name}: must be between {MIN_YEAR} and {MAX_YEAR}",
                       field=name)
    return value
