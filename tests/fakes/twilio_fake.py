"""A local HTTP server that speaks the slice of Twilio's REST API the SMS provider uses.

    with TwilioFake(account_sid, auth_token) as fake:
        provider = TwilioSMSProvider(account_sid, auth_token, from_number=..., base_url=fake.base_url)
        fake.fail_next(status=400, code=21211)
        ...
        fake.requests[-1].form["To"]

Endpoints: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic auth, form body;
201 with Twilio's message JSON, or Twilio's legacy error JSON
`{"code", "message", "more_info", "status"}`. GET on the same path lists messages the way
Twilio does: filters `To`, `From`, `DateSent` / `DateSent<` / `DateSent>` (on `date_sent`,
empty until a message is sent: `mark_sent`), newest first by `date_created`, paged by
`PageSize` (default 50, at most 1000) and `Page`/`PageToken`, with Twilio's paging fields
(`first_page_uri`, `next_page_uri`, `previous_page_uri`, `page`, `page_size`, `start`, `end`,
`uri`) around `messages`. `add_message` puts an earlier message in the account's history.
Scripted behaviour is consumed one request at a time, in order: `fail_next`, `hang_next`, `reset_next`, `respond_next`.
`send_delay` (seconds, settable) makes every send slow, as a busy provider is: the message is
created half-way through, so a client that stops waiting (or dies) in the first half left
nothing, and in the second half left a message it never heard of.

WhatsApp goes through the same endpoint, as with Twilio's WhatsApp sender: `To` and `From` are
`whatsapp:+E164` (one with the prefix and one without: 400, code 21910). A business-initiated
message is a pre-approved template, sent as `ContentSid` (`HX` + 32 hex) with optional
`ContentVariables` (a JSON object of strings; anything else: 400, 21656) and no `Body`. A
free-form `Body` is allowed only within 24 hours of the user's last inbound message
(`whatsapp_inbound`); outside it Twilio still answers 201 and the message then fails with
error 63016, which this fake records on the message (`_fails_with`) and puts in its status
callback (`status_callback_for(sid, "failed")` picks it up). A number in `not_on_whatsapp`
fails the same way with 63003 (the channel could not find the address). Status callbacks of a
WhatsApp message carry `ChannelPrefix=whatsapp` and may say `read`.

Also builds signed status callbacks (`signed_callback`, `status_callback_for`) for webhook
tests, signed the way Twilio signs them (RequestValidator.compute_signature).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twilio.request_validator import SIGNATURE_HEADER, RequestValidator

API_VERSION = "2010-04-01"
MESSAGES_PATH = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-zA-Z]+)/Messages\.json$")
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
MAX_BODY_CHARS = 1600

# Short messages for the codes tests use most; anything else gets a generic text.
ERROR_MESSAGES: dict[int, str] = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-enabled phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
    21656: "The ContentVariables Parameter is invalid.",
    21910: "Invalid From and To pair. From and To should be of the same channel",
    63003: "Channel could not find To address",
    63016: "Failed to send freeform message because you are outside the allowed window.",
}
WHATSAPP = "whatsapp:"
CONTENT_SID = re.compile(r"^HX[0-9a-f]{32}$")
SESSION_SECONDS = 24 * 3600  # WhatsApp's customer service window


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def error_body(status: int, code: int | None, message: str | None = None) -> dict[str, Any]:
    code_or_status = code if code is not None else status
    return {
        "code": code_or_status,
        "message": message or ERROR_MESSAGES.get(code_or_status, "Error"),
        "more_info": MORE_INFO.format(code=code_or_status),
        "status": status,
    }


def _segments(body: str) -> int:
    """GSM-7 fits 160 chars in one segment (153 when split); anything else is UCS-2 (70/67)."""
    try:
        units = len(body.encode("gsm03.38"))  # escape characters count double, as on air
        single, multi = 160, 153
    except (UnicodeEncodeError, LookupError):
        units = len(body.encode("utf-16-le")) // 2
        single, multi = 70, 67
    if units <= single:
        return 1
    return -(-units // multi)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    form: dict[str, str]
    auth: tuple[str, str] | None
    headers: dict[str, str]


@dataclass
class _Script:
    kind: str                   # "fail" | "hang" | "reset" | "respond"
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class SignedCallback:
    """A status callback as Twilio would POST it: send `form` to `url` with `headers`."""

    url: str
    form: dict[str, str]
    headers: dict[str, str]

    @property
    def signature(self) -> str:
        return self.headers[SIGNATURE_HEADER]


def sign(auth_token: str, url: str, params: Mapping[str, str] | None) -> str:
    """X-Twilio-Signature for a form POST to `url` (or a URL carrying bodySHA256, params={})."""
    return RequestValidator(auth_token).compute_signature(url, dict(params or {}))


def signed_callback(
    auth_token: str,
    url: str,
    *,
    message_sid: str,
    status: str,
    account_sid: str = "AC" + "0" * 32,
    to: str = "+15005550006",
    from_: str = "+15005550001",
    error_code: str | int | None = None,
    extra: Mapping[str, str] | None = None,
) -> SignedCallback:
    """A correctly signed Twilio message status callback (form-encoded)."""
    form = {
        "MessageSid": message_sid,
        "SmsSid": message_sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": account_sid,
        "To": to,
        "From": from_,
        "ApiVersion": API_VERSION,
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    form.update(extra or {})
    return SignedCallback(url, form, {SIGNATURE_HEADER: sign(auth_token, url, form)})


def signed_json_callback(auth_token: str, url: str, body: str) -> tuple[str, str]:
    """Twilio's JSON-body variant: returns (url with bodySHA256 appended, signature)."""
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"bodySHA256": digest})
    signed_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return signed_url, sign(auth_token, signed_url, {})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY on every accepted socket, and a buffered writer so a response (status line,
    # headers and body) leaves in one write. Unbuffered, the headers went out in one segment
    # and the body in a second; with Nagle on the client's delayed ACK held that second
    # segment ~40 ms, which is what every send measured against this fake used to include.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.fake._handle(self)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: TwilioFake

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001 - socketserver's signature
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # the client went away (a killed process): nothing to report
        super().handle_error(request, client_address)


class TwilioFake:
    def __init__(self, account_sid: str, auth_token: str, *, host: str = "127.0.0.1",
                 on_message: Callable[[dict[str, Any]], None] | None = None, send_delay: float = 0.0) -> None:
        """`on_message`, if given, is called (on the handler thread) with each message the
        fake creates, as stored in `messages`, before the answer is written; benchmarks use
        it to stamp arrival times. `send_delay`: see the module doc."""
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.on_message = on_message
        self.send_delay = send_delay
        self.requests: list[ReceivedRequest] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.whatsapp_sessions: dict[str, float] = {}  # number -> time of the user's last inbound message
        self.not_on_whatsapp: set[str] = set()
        self._script: deque[_Script] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = _Server((host, 0), _Handler)
        self._server.fake = self
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="twilio-fake", daemon=True
        )

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> TwilioFake:
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()  # wakes any hanging handler
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> TwilioFake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- scripting -------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        code: int | None = None,
        message: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: bool = True,
    ) -> None:
        """Answer the next request with an error. `code=None` gives Twilio's JSON with the HTTP
        status as code for a JSON body; `json_body=False` sends an HTML page instead (as a
        load balancer in front of Twilio might)."""
        if json_body:
            body = json.dumps(error_body(status, code, message)).encode()
            content_type = "application/json"
        else:
            body = f"<html><body>{status}</body></html>".encode()
            content_type = "text/html"
        self._push(_Script("fail", status, body, {"Content-Type": content_type, **(headers or {})}))

    def respond_next(self, status: int, body: bytes | str, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next request with exactly this status and body."""
        raw = body.encode() if isinstance(body, str) else body
        self._push(_Script("respond", status, raw, dict(headers or {})))

    def hang_next(self, seconds: float) -> None:
        """Accept the next request, then say nothing for `seconds` (a client timeout shorter
        than that fires), then answer normally."""
        self._push(_Script("hang", seconds=seconds))

    def reset_next(self) -> None:
        """Read the next request, then drop the connection with a TCP RST."""
        self._push(_Script("reset"))

    def clear_script(self) -> None:
        """Forget scripted answers not yet used (the outage is over)."""
        with self._lock:
            self._script.clear()

    def _push(self, script: _Script) -> None:
        with self._lock:
            self._script.append(script)

    def _pop(self) -> _Script | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    # --- callbacks -------------------------------------------------------------------------

    def status_callback_for(self, message_sid: str, status: str, *, error_code: str | int | None = None,
                            url: str | None = None) -> SignedCallback:
        """A signed status callback for a message this fake accepted, to the StatusCallback URL
        the send asked for (or `url`)."""
        message = self.messages[message_sid]
        target = url or message.get("_status_callback")
        if not target:
            raise ValueError(f"message {message_sid} was sent without StatusCallback; pass url=")
        if error_code is None and status in ("failed", "undelivered"):
            error_code = message.get("_fails_with")
        whatsapp = message["to"].startswith(WHATSAPP)
        return signed_callback(
            self.auth_token, target, message_sid=message_sid, status=status,
            account_sid=self.account_sid, to=message["to"], from_=message["from"] or "",
            error_code=error_code, extra={"ChannelPrefix": "whatsapp"} if whatsapp else None,
        )

    def whatsapp_inbound(self, number: str, at: float | None = None) -> None:
        """The user wrote to the business on WhatsApp: a free-form window opens for 24 hours."""
        self.whatsapp_sessions[number.removeprefix(WHATSAPP)] = time.time() if at is None else at

    # --- request handling ------------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        received = ReceivedRequest(
            method=h.command, path=h.path, form=form, auth=_basic_auth(h.headers.get("Authorization")),
            headers={k: v for k, v in h.headers.items()},
        )
        with self._lock:
            self.requests.append(received)

        script = self._pop()
        if script is not None:
            if script.kind == "reset":
                _reset(h)
                return
            if script.kind == "hang":
                if self._closing.wait(script.seconds):
                    _reset(h)
                    return
            else:
                self._send(h, script.status, script.body, script.headers)
                return

        status, payload = self._messages_api(received)
        self._send(h, status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _messages_api(self, req: ReceivedRequest) -> tuple[int, dict[str, Any]]:
        match = MESSAGES_PATH.match(urlsplit(req.path).path)
        if match is None:
            return 404, error_body(404, 20404)
        if req.auth != (self.account_sid, self.auth_token):
            return 401, error_body(401, 20003)
        if match["account"] != self.account_sid:
            return 404, error_body(404, 20404)
        if req.method == "GET":
            return self._list_messages(req)
        if req.method != "POST":
            return 405, error_body(405, None, "Method not allowed")
        form = req.form
        if not form.get("To"):
            return 400, error_body(400, 21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return 400, error_body(400, 21603)
        if form.get("From") and form["To"].startswith(WHATSAPP) != form["From"].startswith(WHATSAPP):
            return 400, error_body(400, 21910)
        body = form.get("Body", "")
        if form.get("ContentSid"):
            if not CONTENT_SID.match(form["ContentSid"]):
                return 404, error_body(404, 20404)
            if not _content_variables_ok(form.get("ContentVariables")):
                return 400, error_body(400, 21656)
        elif not body and not form.get("MediaUrl"):
            return 400, error_body(400, 21602)
        if len(body) > MAX_BODY_CHARS:
            return 400, error_body(400, 21617)
        delay = self.send_delay / 2
        if delay:
            self._closing.wait(delay)
        message = self._create_message(form)
        if delay:
            self._closing.wait(delay)
        return 201, message

    def _create_message(self, form: dict[str, str]) -> dict[str, Any]:
        sid = new_message_sid()
        created = time.time()
        now = formatdate(created, usegmt=True)
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        body = form.get("Body", "")
        message = {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "num_media": "0",
            "num_segments": str(_segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            # With a Messaging Service and no From, Twilio picks the sender later: "accepted".
            "status": "queued" if form.get("From") else "accepted",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": form["To"],
            "uri": uri,
        }
        stored = {**message, "_status_callback": form.get("StatusCallback"), "_created": created,
                  "_content_sid": form.get("ContentSid"), "_content_variables": form.get("ContentVariables"),
                  "_fails_with": self._whatsapp_failure(form, created)}
        with self._lock:
            self.messages[sid] = stored
        if self.on_message is not None:
            self.on_message(stored)
        return message

    def _whatsapp_failure(self, form: dict[str, str], now: float) -> int | None:
        """The error a WhatsApp message will fail with after its 201 (None: it goes through)."""
        to = form["To"]
        if not to.startswith(WHATSAPP):
            return None
        number = to.removeprefix(WHATSAPP)
        if number in self.not_on_whatsapp:
            return 63003
        if form.get("ContentSid"):
            return None  # a template may start a conversation
        opened = self.whatsapp_sessions.get(number)
        return None if opened is not None and now - opened < SESSION_SECONDS else 63016

    def add_message(self, to: str, body: str, *, from_: str, created: datetime,
                    sent: datetime | None = None) -> str:
        """An earlier outbound message in the account's history, created at `created` (and
        handed to the carrier at `sent`: status `delivered`; else still `queued`). Its SID."""
        sid = new_message_sid()
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json"
        stamp = formatdate(created.timestamp(), usegmt=True)
        message = {
            "account_sid": self.account_sid, "api_version": API_VERSION, "body": body, "date_created": stamp,
            "date_sent": formatdate(sent.timestamp(), usegmt=True) if sent else None,
            "date_updated": formatdate((sent or created).timestamp(), usegmt=True), "direction": "outbound-api",
            "error_code": None, "error_message": None, "from": from_, "messaging_service_sid": None,
            "num_media": "0", "num_segments": str(_segments(body)), "price": "-0.00790" if sent else None,
            "price_unit": "USD", "sid": sid, "status": "delivered" if sent else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")}, "to": to, "uri": uri,
            "_status_callback": None, "_created": created.timestamp(),
        }
        with self._lock:
            self.messages[sid] = message
        return sid

    def mark_sent(self, sid: str, when: datetime | None = None) -> None:
        """Twilio handed the message to the carrier: status `sent`, `date_sent` set."""
        with self._lock:
            message = self.messages[sid]
            message["status"] = "sent"
            message["date_sent"] = formatdate((when or datetime.now(UTC)).timestamp(), usegmt=True)

    def _list_messages(self, req: ReceivedRequest) -> tuple[int, dict[str, Any]]:
        split = urlsplit(req.path)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            page_size = int(query.get("PageSize", "50"))
            page = int(query.get("Page", "0"))
        except ValueError:
            return 400, error_body(400, 20001, "Invalid paging parameter")
        if not 1 <= page_size <= 1000 or page < 0:
            return 400, error_body(400, 20001, "Invalid paging parameter")
        date_filters = []
        for key, op in (("DateSent", "="), ("DateSent<", "<="), ("DateSent>", ">=")):
            if query.get(key):
                try:
                    day = datetime.fromisoformat(query[key].replace("Z", "+00:00")).date()
                except ValueError:
                    return 400, error_body(400, 20001, f"Invalid {key}")
                date_filters.append((op, day))
        with self._lock:
            stored = list(self.messages.values())
        # Newest first by creation, as Twilio lists (the later one first within a second).
        stored = sorted(reversed(stored), key=lambda m: m["_created"], reverse=True)
        selected = []
        for m in stored:
            if query.get("To") and m["to"] != query["To"]:
                continue
            if query.get("From") and m["from"] != query["From"]:
                continue
            if date_filters:
                if not m["date_sent"]:
                    continue
                sent = parsedate_to_datetime(m["date_sent"]).date()
                if not all((sent == d) if op == "=" else (sent <= d) if op == "<=" else (sent >= d)
                           for op, d in date_filters):
                    continue
            selected.append(m)
        base = split.path
        kept = [(k, v) for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")]

        def uri(n: int) -> str:
            extra = [("PageToken", f"PA{n * page_size}")] if n > 0 else []
            return base + "?" + urlencode([*kept, ("PageSize", page_size), ("Page", n), *extra])

        start = page * page_size
        chunk = [{k: v for k, v in m.items() if not k.startswith("_")} for m in selected[start:start + page_size]]
        has_next = start + page_size < len(selected)
        return 200, {
            "messages": chunk,
            "end": start + len(chunk) - 1 if chunk else start,
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": uri(page),
        }

    @staticmethod
    def _send(h: _Handler, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            h.send_response(status)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()  # into the handler's write buffer (wbufsize), not yet on the wire
            h.wfile.write(body)
            h.wfile.flush()  # headers + body: one send
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test); nothing to tell it


def _content_variables_ok(raw: str | None) -> bool:
    if raw is None:
        return True
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except ValueError:
        return None
    return user, password


def _reset(h: _Handler) -> None:
    """Close with RST instead of FIN: SO_LINGER on, zero timeout."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
    except OSError:
        pass


def closed_port_url(host: str = "127.0.0.1") -> str:
    """A base URL where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind((host, 0))
        port = s.getsockname()[1]
    return f"http://{host}:{port}"
