"""Every 4xx is JSON: a stable machine `code`, a human `message` naming the field, and the
`field` itself where one is at fault. Codes are constants so tests and clients share them.

The service layer raises domain errors (domain/errors.py: `Invalid`, `NotFound`, `Conflict`...),
which carry no status: `HTTP_STATUS` below is the one table giving each kind its status, used
by the app's handler here and by the review pages' (review/session.py). `ApiError` is for
refusals the HTTP edge decides itself, with an explicit status and headers.

Pages for people (the review pages) register an HTML error page for their path prefix in
``app.extensions[HTML_ERROR_PAGES]``: an error no view handled under that prefix (an unknown
address, a wrong method, an unexpected failure) renders that page instead of the JSON."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from .domain.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    Forbidden,
    Invalid,
    NotFound,
    Unauthenticated,
    Unavailable,
    field_path,
    invalid_from_validation,
)

__all__ = ["HTML_ERROR_PAGES", "ApiError", "DomainError", "ErrorCode", "HTTP_STATUS", "error_body", "field_path",
           "from_validation_error", "http_headers", "http_status", "register_error_handlers", "reject_nul_in_url"]


class ApiError(DomainError):
    """A refusal decided at the HTTP edge itself (request parsing, rate limits, webhooks), with
    its own status and headers. A DomainError, so one handler and one `except` serve both."""

    def __init__(self, status: int, code: ErrorCode, message: str, *, field: str | None = None,
                 details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message, field=field, details=details)
        self.headers = headers or {}
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        return error_body(self)


# The one place a kind of domain refusal becomes an HTTP status.
HTTP_STATUS: dict[type[DomainError], int] = {
    Invalid: 422,
    NotFound: 404,
    Conflict: 409,
    Unauthenticated: 401,
    Forbidden: 403,
    Unavailable: 503,
}


def http_status(exc: DomainError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    for kind in type(exc).__mro__:
        if kind in HTTP_STATUS:
            return HTTP_STATUS[kind]
    raise TypeError(f"{type(exc).__name__} has no HTTP status: add its kind to HTTP_STATUS")


def http_headers(exc: DomainError) -> dict[str, str]:
    return exc.headers if isinstance(exc, ApiError) else {}


def error_body(exc: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"code": str(exc.code), "message": exc.message}
    if exc.field:
        body["field"] = exc.field
    if exc.details:
        body["details"] = exc.details
    return {"error": body}


def from_validation_error(exc: ValidationError) -> Invalid:
    return invalid_from_validation(exc)


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
    @app.errorhandler(DomainError)
    def _refused(exc: DomainError):
        return jsonify(error_body(exc)), http_status(exc), http_headers(exc)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError):
        err = from_validation_error(exc)
        return jsonify(error_body(err)), http_status(err)

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
