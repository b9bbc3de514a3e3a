"""The fields of signed webhook events, checked before anything is stored.

A valid signature proves who sent an event, not that every value fits: a SendGrid
`timestamp` of 1e300 is no date, a lone UTF-16 surrogate ("\\ud800" in JSON) cannot be
encoded for any database, a 300-character id does not fit a 255-character column. Each
check here raises `MalformedEvent` naming the field as the provider's payload names it, so
the webhook answers 4xx instead of failing halfway through a write.

Hand-written on purpose: the checks are a type and a length per field (each provider lists
its fields and limits in a table) plus one walk for characters no database stores, which
no validation library checks; `storable` makes a refused event safe to keep for inspection.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from . import safe_json
from .base import EventFault, MalformedEvent, RejectedEvent

# Longest string kept of a refused event (`storable`); the event is kept for a person to
# read, not to be applied.
MAX_STORED_TEXT = 1000
_REPLACEMENT = "\ufffd"


def field_name(path: list[str | int]) -> str:
    return ".".join(str(p) for p in path) or "body"


def _text_fault(value: str) -> str | None:
    match = safe_json.UNSTORABLE.search(value)
    if match is None:
        return None
    if match.group() == "\x00":
        return "must not contain NUL (\\u0000)"
    return "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)"


def _check_text(value: Any, path: list[str | int]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            fault = _text_fault(str(key))
            if fault:
                raise MalformedEvent(field_name(path), EventFault.INVALID_CHARACTER, f"a key {fault}")
            _check_text(item, [*path, key])
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_text(item, [*path, index])
    elif isinstance(value, str):
        fault = _text_fault(value)
        if fault:
            raise MalformedEvent(field_name(path), EventFault.INVALID_CHARACTER, fault)


_UNSAFE_JSON_FAULTS = {
    "too_deep": EventFault.NESTING_TOO_DEEP,
    "invalid_number": EventFault.INVALID_NUMBER,
    "invalid_character": EventFault.INVALID_CHARACTER,
}


def from_unsafe_json(exc: safe_json.UnsafeJson, within: str = "") -> MalformedEvent:
    """safe_json's refusal as a MalformedEvent; `within` names the field that held the JSON."""
    field = exc.field if not within else within if exc.field == "body" else f"{within}.{exc.field}"
    return MalformedEvent(field, _UNSAFE_JSON_FAULTS.get(exc.kind, EventFault.INVALID_VALUE), exc.message)


def check_values(value: Any, path: list[str | int]) -> None:
    """Every string and number of `value` (an event, a form) storable: no NUL, no lone
    surrogate, no NaN/Infinity, no integer beyond 64 bits. Raises MalformedEvent."""
    _check_text(value, path)   # first: the keys are then fit to name a field
    try:
        safe_json.check(value, path)
    except safe_json.UnsafeJson as exc:
        raise from_unsafe_json(exc) from None


def text(container: Mapping[str, Any], key: str, *, field: str, max_len: int) -> str | None:
    """`container[key]`: absent or null is None; otherwise a string of at most `max_len`
    characters, or MalformedEvent."""
    value = container.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedEvent(field, EventFault.INVALID_VALUE, "must be a string")
    if len(value) > max_len:
        raise MalformedEvent(field, EventFault.INVALID_VALUE, f"must be at most {max_len} characters")
    return value


def check_texts(container: Mapping[str, Any], limits: Mapping[str, int], prefix: str = "") -> None:
    """`text` for every key of a limits table."""
    for key, max_len in limits.items():
        text(container, key, field=f"{prefix}{key}", max_len=max_len)


def mapping(container: Mapping[str, Any], key: str, *, field: str) -> Mapping[str, Any]:
    """`container[key]` as an object: absent, null or empty is {}; another type is malformed."""
    value = container.get(key)
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedEvent(field, EventFault.INVALID_VALUE, "must be an object")
    return value


_OUT_OF_RANGE = "must be a time between the years 1 and 9999"


def epoch_seconds(value: Any, field: str) -> datetime | None:
    """A time in seconds since 1970 (SendGrid's `timestamp`); null is None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedEvent(field, EventFault.INVALID_VALUE, "must be a number of seconds since 1970")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvent(field, EventFault.DATE_OUT_OF_RANGE, _OUT_OF_RANGE) from None


def iso_time(value: Any, field: str) -> datetime | None:
    """An ISO 8601 time (SES's timestamps), in UTC; null or empty is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise MalformedEvent(field, EventFault.INVALID_VALUE, "must be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(field, EventFault.INVALID_VALUE, "must be an ISO 8601 time") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:   # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise MalformedEvent(field, EventFault.DATE_OUT_OF_RANGE, _OUT_OF_RANGE) from None


# -- keeping a refused event ----------------------------------------------------------------


def _clean(value: str) -> str:
    cut = value[:MAX_STORED_TEXT]
    return safe_json.UNSTORABLE.sub(_REPLACEMENT, cut) + ("…" if len(value) > MAX_STORED_TEXT else "")


def storable(value: Any) -> Any:
    """A copy of `value` any JSON column can hold: NUL and lone surrogates replaced by U+FFFD,
    strings cut at MAX_STORED_TEXT characters, numbers JSON cannot carry as their text."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, Mapping):
        return {_clean(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) <= safe_json.MAX_INT else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return _clean(str(value))   # safe_json's marker for an integer too long to read: its digits


def rejected(provider: str, event: Any, error: MalformedEvent) -> RejectedEvent:
    """The refused event as it can be kept: storable, with an id that is the same for every
    redelivery of the same event (so a retried batch does not keep it twice)."""
    kept = storable(event)
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()
    raw = {"rejected": {"field": _clean(error.field), "code": error.fault.value, "reason": error.reason},
           "event": kept}
    return RejectedEvent(provider=provider, event_id=f"rejected:sha256:{digest[:32]}", error=error, raw=raw)
