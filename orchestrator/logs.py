"""Structured JSON logs. Call sites pass ids (message_id, attempt_id) as `extra`; phone
numbers, emails and bodies never go in — mask them first (domain.addresses)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_CONTEXT_KEYS = ("message_id", "attempt_id", "channel", "provider", "status", "error_class",
                 "error_code", "user_id", "event", "count")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT_KEYS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
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
