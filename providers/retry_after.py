"""`Retry-After` (RFC 9110 §10.2.3), read once for every provider: delta-seconds or an HTTP-date.

Whatever a provider (or something between us and it) sends, the result is a finite number of
seconds in [0, cap], or None when the header is missing or is not one of the two forms.
"""

from __future__ import annotations

import email.utils
import re
import time
from datetime import UTC

# A provider's hint longer than this is read as this: the orchestrator schedules the retry
# itself (due_at), and the attempt's sending window ends long before anyway.
MAX_RETRY_AFTER_SECONDS = 3600.0

# delta-seconds is 1*DIGIT; a decimal fraction is tolerated (some services send one). No sign,
# no exponent, no "nan"/"inf": those are garbage, not delays.
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, *, cap: float = MAX_RETRY_AFTER_SECONDS,
                      now: float | None = None) -> float | None:
    """Seconds to wait, between 0 and `cap`; None for a missing or unreadable header. An
    HTTP-date counts from `now` (epoch seconds; the current time by default), a past one as 0."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)  # a very long digit string reads as inf: capped below
    else:
        seconds = _until_http_date(text, time.time() if now is None else now)
        if seconds is None:
            return None
    return min(max(seconds, 0.0), cap)


def _until_http_date(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": the date is UTC, with no claim about the sender's zone
        when = when.replace(tzinfo=UTC)
    try:
        return when.timestamp() - now
    except (OverflowError, ValueError):
        return None
