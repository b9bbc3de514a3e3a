"""What every HTTP request gets: a request id, one JSON access-log line, and a duration
observation by route.

Request ids: a caller's `X-Request-Id` is kept when it is 1-128 characters of letters,
digits and `._:-` (anything else — too long, spaces, an address, control characters — is
replaced, so a log line never carries what a caller smuggled in); otherwise a ULID is
generated. The id is echoed on every response, set in `logs.REQUEST_ID` for every line
logged while the request runs, and travels with the work the request causes (the wake-up
of its attempts and status callbacks, as a Celery task header).

The access line and the metric name the route by its URL rule (`/v1/recipients/<user_id>`),
never the raw path, which may carry a user id or an address."""

from __future__ import annotations

import logging
import re
import time

from flask import Flask, Response, g, request
from ulid import ULID

from . import metrics
from .logs import MESSAGE_ID, REQUEST_ID

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_VALID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"

access_log = logging.getLogger("orchestrator.access")
log = logging.getLogger("orchestrator.api")


def new_request_id() -> str:
    return str(ULID())


def request_id_from(value: str | None) -> str:
    """The caller's id when it is safe to log and echo, else a fresh one."""
    if value and _VALID.fullmatch(value):
        return value
    return new_request_id()


def install(app: Flask) -> None:
    """Registers the hooks; call before any other before_request hook, so a request refused
    early still gets its id."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)


def _begin() -> None:
    g.request_id = request_id_from(request.headers.get(HEADER))
    g.request_started = time.perf_counter()
    g.request_id_token = REQUEST_ID.set(g.request_id)


def note_message(message_id: str) -> None:
    """The request concerns this message: the rest of its log lines (the access line
    included) carry the message id."""
    g.message_id_token = MESSAGE_ID.set(message_id)


def accepted(message_id: str, status: str) -> None:
    """The line an operator searches for when a backend says "you answered 202"."""
    note_message(message_id)
    log.info("message accepted", extra={"status": status, "status_code": 202})


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or new_request_id()
    response.headers[HEADER] = request_id
    started = g.get("request_started")
    duration = time.perf_counter() - started if started is not None else 0.0
    route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
    method = request.method if request.method in _METHODS else "OTHER"
    metrics.HTTP_REQUEST_SECONDS.labels(method, route, str(response.status_code)).observe(duration)
    access_log.info("%s %s %s", method, route, response.status_code,
                    extra={"method": method, "route": route, "status_code": response.status_code,
                           "duration_ms": round(duration * 1000, 2)})
    return response


def _end(_exc: BaseException | None) -> None:
    for var, name in ((MESSAGE_ID, "message_id_token"), (REQUEST_ID, "request_id_token")):
        token = g.pop(name, None)
        if token is not None:
            try:
                var.reset(token)
            except ValueError:  # set in another context (cannot happen per request; be safe)
                var.set(None)


# -- the ASGI side: every response, streams included ---------------------------------
_HEADER_BYTES = HEADER.lower().encode()


def asgi_request_id(scope: dict) -> tuple[dict, str]:
    """The request id for an ASGI request, and the scope with the header replaced by it, so
    the Flask side (which runs behind a2wsgi) takes the same id."""
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != _HEADER_BYTES]
    sent = next((v for k, v in scope.get("headers", []) if k.lower() == _HEADER_BYTES), b"")
    request_id = request_id_from(sent.decode("latin-1"))
    headers.append((_HEADER_BYTES, request_id.encode()))
    return {**scope, "headers": headers}, request_id


def echoing_send(send, request_id: str):
    """`send` that adds the request id to the response head when the app did not."""
    value = request_id.encode()

    async def wrapped(message: dict) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(k.lower() == _HEADER_BYTES for k, _ in headers):
                headers.append((_HEADER_BYTES, value))
                message = {**message, "headers": headers}
        await send(message)

    return wrapped
