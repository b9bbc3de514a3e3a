"""Every 4xx is JSON: a stable machine `code`, a human `message` naming the field, and the
`field` itself where one is at fault. Codes are constants so tests and clients share them.

Pages for people (the review pages) register an HTML error page for their path prefix in
``app.extensions[HTML_ERROR_PAGES]``: an error no view handled under that prefix (an unknown
address, a wrong method, an unexpected failure) renders that page instead of the JSON."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from flask import Flask, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException


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


class ApiError(Exception):
    def __init__(self, status: int, code: ErrorCode, message: str, *, field: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = headers or {}
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": str(self.code), "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.details:
            body["details"] = self.details
        return {"error": body}


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "body"


def from_validation_error(exc: ValidationError) -> ApiError:
    details = []
    for err in exc.errors(include_url=False, include_input=False):
        path = field_path(err["loc"])
        # Custom validators raise ValueError("code: sentence"): keep their stable code.
        msg = err["msg"].removeprefix("Value error, ")
        code = ErrorCode.VALIDATION_ERROR
        if ": " in msg and msg.split(": ", 1)[0] in ErrorCode._value2member_map_:
            code_str, msg = msg.split(": ", 1)
            code = ErrorCode(code_str)
        details.append({"field": path, "code": str(code), "message": msg})
    first = details[0]
    return ApiError(
        422, ErrorCode(first["code"]), f"{first['field']}: {first['message']}",
        field=first["field"], details=details,
    )


def reject_nul_in_url() -> None:
    """A NUL in a path segment or query value never names anything we store (PostgreSQL
    text cannot even hold it): refuse it before any route runs, naming the parameter."""
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{name}: must not contain NUL (%00)", field=name)
    if "\x00" in request.path:
        raise ApiError(422, ErrorCode.VALIDATION_ERROR, "path: must not contain NUL (%00)", field="path")
    for name, value in request.args.items(multi=True):
        if "\x00" in name or "\x00" in value:
            field = name.replace("\x00", "")
            raise ApiError(422, ErrorCode.VALIDATION_ERROR, f"{field}: must not contain NUL (%00)", field=field)


HTML_ERROR_PAGES = "html_error_pages"  # {path prefix: render(status, title, message) -> response}


def _html_page(app: Flask, status: int, title: str, message: str):
    """The HTML error page registered for the request's path prefix, or None (then JSON)."""
    for prefix, render in app.extensions.get(HTML_ERROR_PAGES, {}).items():
        if request.path == prefix.rstrip("/") or request.path.startswith(prefix):
            return render(status, title, message)
    return None


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return jsonify(exc.to_dict()), exc.status, exc.headers

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        err = from_validation_error(exc)
        return jsonify(err.to_dict()), err.status

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        code = {
            404: ErrorCode.NOT_FOUND,
            405: ErrorCode.METHOD_NOT_ALLOWED,
            413: ErrorCode.PAYLOAD_TOO_LARGE,
            415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        }.get(exc.code or 500, ErrorCode.VALIDATION_ERROR)
        field = None
        message = exc.description or exc.name
        if exc.code == 413:  # the route's own cap (a batch takes more than MAX_BODY_BYTES)
            limit = request.max_content_length or app.config.get("MAX_CONTENT_LENGTH")
            field, message = "body", f"body: the request body is larger than {limit} bytes"
        page = _html_page(app, exc.code or 500, exc.name, message)
        response = page if page is not None else jsonify(ApiError(exc.code or 500, code, message,
                                                                  field=field).to_dict())
        # Keep what the exception says beyond its body: `Allow` on 405, for one.
        for name, value in exc.get_headers():
            if name.lower() not in ("content-type", "content-length"):
                response.headers[name] = value
        return response, exc.code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Never leak internals; the log line carries the traceback for operators.
        app.logger.exception("unhandled error")
        page = _html_page(app, 500, "Something went wrong", "The page could not be shown because of an error on "
                                                             "the server; it has been logged. Try again, or tell an "
                                                             "administrator.")
        if page is not None:
            return page
        return jsonify(ApiError(500, ErrorCode.INTERNAL, "internal error").to_dict()), 500
