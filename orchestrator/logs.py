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
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_CONTEXT_KEYS = ("request_id", "message_id", "attempt_id", "channel", "provider", "status", "error_class",
                 "error_code", "user_id", "event", "count", "method", "route", "status_code", "duration_ms",
                 "task_id", "checkpoint")

# The request (or task) being served in this thread or task, and the message it concerns.
# Every line logged while they are set carries them, whichever module logs it.
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
MESSAGE_ID: ContextVar[str | None] = ContextVar("message_id", default=None)


@contextmanager
def log_context(*, request_id: str | None = None, message_id: str | None = None) -> Iterator[None]:
    """Within the block, log lines carry these ids (where the call site does not pass its own)."""
    tokens = []
    if request_id is not None:
        tokens.append((REQUEST_ID, REQUEST_ID.set(request_id)))
    if message_id is not None:
        tokens.append((MESSAGE_ID, MESSAGE_ID.set(message_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


_EMAIL = re.compile(r"[^\s@/\"'<>(),;:]+@[^\s@/\"'<>(),;:]+\.[A-Za-z]{2,}")
_EMAIL_ENCODED = re.compile(r"[^\s@/\"'<>(),;:%]+%40[^\s@/\"'<>(),;:]+", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+|%2B)\d[\d\s().-]{6,18}\d", re.IGNORECASE)


TASK_HEADER = "request_id"


def task_headers() -> dict[str, str]:
    """Celery headers carrying the current request id to the work it causes."""
    request_id = REQUEST_ID.get()
    return {TASK_HEADER: request_id} if request_id else {}


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
        request_id, message_id = REQUEST_ID.get(), MESSAGE_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        if message_id is not None:
            entry["message_id"] = message_id
        for key in _CONTEXT_KEYS:
            if hasattr(record, key):
                value = getattr(record, key)
                entry[key] = hash_user_id(value) if key == "user_id" and value is not None else value
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def handler() -> logging.Handler:
    """The one handler every process logs through: JSON lines on stderr."""
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(JsonFormatter())
    h.set_name(HANDLER_NAME)
    return h


HANDLER_NAME = "orchestrator-json"
STARTUP_LOGGER = "orchestrator.startup"


def uvicorn_log_config(level: str = "INFO") -> dict:
    """uvicorn's `log_config`: its own loggers (server and errors) through the same JSON
    handler, in the supervisor and in every server process it spawns. Its access log stays
    off: the app writes one JSON line per request itself (orchestrator.request_log), with
    the route template instead of the raw path, which may carry a user id."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {HANDLER_NAME: {"class": "logging.StreamHandler", "formatter": "json",
                                    "stream": "ext://sys.stderr"}},
        "root": {"handlers": [HANDLER_NAME], "level": "WARNING"},
        "loggers": {
            "uvicorn": {"level": level.upper(), "propagate": True},
            "uvicorn.error": {"level": level.upper(), "propagate": True},
            "uvicorn.access": {"level": "WARNING", "propagate": True},
        },
    }


_configured = False


def configure_logging(level: str = "INFO") -> None:
    """Every line of the process as JSON: one handler on the root logger, so library loggers
    (uvicorn, Celery, kombu, SQLAlchemy warnings) come out in the same shape. Idempotent, and
    it keeps a JSON handler already installed (uvicorn's log_config)."""
    global _configured
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.addHandler(handler())
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    ours = logging.getLogger("orchestrator")
    ours.setLevel(level.upper())
    ours.propagate = True
    for h in list(ours.handlers):  # an older configuration wrote through a handler of its own
        if h.get_name() == HANDLER_NAME:
            ours.removeHandler(h)
    logging.getLogger(STARTUP_LOGGER).setLevel(logging.INFO)  # the startup summary, whatever LOG_LEVEL
    logging.captureWarnings(True)  # Python warnings (Celery's run-as-root one, say) as JSON lines too
    # The Twilio SDK logs each request at INFO (headers, and in some versions the form
    # with the phone number and body): keep it to warnings.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    _configured = True
