"""Address validation: phone numbers to E.164 with `phonenumbers`, a light email check
(deliverability is the mail server's word, not ours), IANA timezones, and masking for logs."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from providers.masking import mask_email, mask_phone

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def to_e164(raw: str) -> str:
    """Raises ValueError with a sentence when `raw` is not a valid international number."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(
            f"invalid_phone: '{mask_phone(raw)}' is not a phone number in international "
            f"format (+<country code><number>): {exc._msg}"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"invalid_phone: '{mask_phone(raw)}' is not a valid number for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_email(raw: str) -> str:
    if not _EMAIL.match(raw) or len(raw) > 320:
        raise ValueError(f"validation_error: '{mask_email(raw)}' is not an email address")
    return raw


def check_timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"invalid_timezone: '{raw}' is not an IANA timezone such as 'Europe/London'") from None
    return raw


def check_hhmm(raw: str) -> str:
    if not _HHMM.match(raw):
        raise ValueError(f"validation_error: '{raw}' is not a time of day as HH:MM")
    return raw
