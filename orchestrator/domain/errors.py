"""The service layer's refusals: a `DomainError` says WHAT is wrong — its kind (the subclass),
a stable machine `code`, a human `message` naming the field, and the `field` itself — never
an HTTP status. The HTTP edge (orchestrator/errors.py, `HTTP_STATUS`) maps each kind to its
status in one table and writes the JSON (or the review pages' HTML) from these fields.

`ErrorCode` lives here so the domain layer names its codes without importing the web layer;
orchestrator.errors re-exports it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ValidationError


class ErrorCode(StrEnum):
    INVALID_JSON = "invalid_json"
    NESTING_TOO_DEEP = "nesting_too_deep"
    INVALID_NUMBER = "invalid_number"
    INVALID_CHARACTER = "invalid_character"
    INVALID_URL = "invalid_url"
    DATE_OUT_OF_RANGE = "date_out_of_range"
    VALIDATION_ERROR = "validation_error"
    UNKNOWN_CATEGORY = "unknown_category"
    PREFERENCE_LOCKED = "preference_locked"
    INVALID_PHONE = "invalid_phone"
    INVALID_TIMEZONE = "invalid_timezone"
    ALREADY_EXPIRED = "already_expired"
    CONTENT_TOO_LARGE = "content_too_large"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHORIZED = "unauthorized"
    TOKEN_EXPIRED = "token_expired"  # an in-app user token past its expires_at: ask for a new one
    TOKEN_REVOKED = "token_revoked"  # an in-app user token that was revoked: sign the user out
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    IDEMPOTENCY_CONFLICT = "idempotency_key_reused"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BAD_SIGNATURE = "bad_signature"
    INVALID_POLICY = "invalid_policy"
    VERSION_EXISTS = "version_exists"
    VERSION_MISMATCH = "version_mismatch"
    INVALID_TRANSITION = "invalid_transition"
    MESSAGE_FINAL = "message_final"
    SELF_APPROVAL_FORBIDDEN = "self_approval_forbidden"
    TOO_MANY_STREAMS = "too_many_streams"
    LINK_EXPIRED = "link_expired"
    UNKNOWN_TEMPLATE = "unknown_template"
    TEMPLATE_EXISTS = "template_exists"
    INVALID_TEMPLATE = "invalid_template"
    MISSING_VARIABLE = "missing_variable"
    UNEXPECTED_VARIABLE = "unexpected_variable"
    RENDER_FAILED = "render_failed"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "service_unavailable"
    INTERNAL = "internal_error"


class DomainError(Exception):
    """A refusal: `code`, `message` (naming the field), `field` and, for a validation that
    found several faults, `details` (one {field, code, message} each). Raise a subclass."""

    def __init__(self, code: ErrorCode, message: str, *, field: str | None = None,
                 details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.details = details


class Invalid(DomainError):
    """The request (or a document in it) breaks a rule: a field's value, a limit, a policy."""


class NotFound(DomainError):
    """What the request names does not exist."""


class Conflict(DomainError):
    """The request contradicts what is stored: a taken version or id, a reused key, a state
    that does not allow this step."""


class Unauthenticated(DomainError):
    """No credential, or one that names no one."""


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class Unavailable(DomainError):
    """The service cannot do this now; an operator must act first."""


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "body"


def invalid_from_validation(exc: ValidationError) -> Invalid:
    """A pydantic validation failure as one `Invalid` naming its first field, every fault in
    `details`. Custom validators raise ValueError("code: sentence"): their stable code is kept."""
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        path = field_path(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        code = ErrorCode.VALIDATION_ERROR
        if ": " in msg and msg.split(": ", 1)[0] in ErrorCode._value2member_map_:
            code_str, msg = msg.split(": ", 1)
            code = ErrorCode(code_str)
        details.append({"field": path, "code": str(code), "message": msg})
    first = details[0]
    return Invalid(ErrorCode(first["code"]), f"{first['field']}: {first['message']}",
                   field=first["field"], details=details)
