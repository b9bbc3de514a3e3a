"""Structured JSON logs. Call sites pass ids (message_id, attempt_id) as `extra`; phone
numbers, emails and bodies never go in — mask them first (domain.addresses).

As a backstop the formatter never writes an address in any form: `user_id` (which may be
an email) is replaced by a short hash, and anything shaped like an email address or an
E.164 phone number in the message or a traceback is masked."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from datetime import UTC, datetime

_CONTEXT_KEYS = ("message_id", "attempt_id", "channel", "provider", "status", "error_class",
                 "error_code", "user_id", "event", "count", "checkpoint")


_EMAIL = re.compile(r"[^\s@/\"'<>(),;:]+@[^\s@/\"'<>(),;:]+\.[A-Za-z]{2,}")
_EMAIL_ENCODED = re.compile(r"[^\s@/\"'<>(),;:%]+%40[^\s@/\"'<>(),;:]+", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+|%2B)\d[\d\s().-]{6,18}\d", re.IGNORECASE)


def hash_user_id(user_id: object) -> str:
    """A stable pseudonym for log correlation: the same user hashes the same way."""
    return "u:" + hashlib.sha256(str(user_id).encode()).hexdigest()[:12]


def scrub(text: str) -> str:
    """Masks email addresses (plain or %40-encoded) and +E.164 phone numbers."""
    text = _EMAIL_ENCODED.sub("[email]", _EMAIL.sub("[email]", text))
    return _PHONE.sub("[phone]", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        for key in _CONTEXT_KEYS:
            if hasattr(record, key):
                value = getattr(record, key)
                entry[key] = hash_user_id(value) if key == "user_id" and value is not None else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


_configured = False


def configure_logging(level: str = "INFO") -> None:
    global _configured
    if _configured:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("orchestrator")
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # The Twilio SDK logs each request at INFO (headers, and in some versions the form
    # with the phone number and body): keep it to warnings.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    _configured = True
