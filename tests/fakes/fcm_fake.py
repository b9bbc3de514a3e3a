"""A local FCM HTTP v1 server: Google's OAuth token endpoint plus `messages:send`.

It speaks the real protocol: the client must obtain an access token with a JWT-bearer grant
whose assertion is signed RS256 by the service account's key (verified here with the public
half of a key pair generated per fake), then send with `Authorization: Bearer <token>`.
Failures are scripted in FCM v1's own error JSON.

    with FcmFake() as fake:
        provider = FCMProvider(fake.service_account_info, endpoint_base=fake.base_url)
        fake.fail_next(404, "NOT_FOUND", "UNREGISTERED")
"""

from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
SEND_PATH = re.compile(r"^/v1/projects/(?P<project>[^/]+)/messages:send$")
TOKEN_PATH = "/token"
# google-auth always addresses the assertion to Google's endpoint, whatever token_uri says.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"

# Status text FCM pairs with each HTTP code, for scripted errors that only give a code.
RPC_STATUS_FOR = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def fcm_error_body(
    code: int,
    status: str | None = None,
    error_code: str | None = None,
    message: str = "scripted failure",
    extra_details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """An error body in the exact shape FCM v1 returns."""
    details: list[dict[str, Any]] = []
    if error_code:
        details.append({"@type": FCM_ERROR_TYPE, "errorCode": error_code})
    details.extend(extra_details or [])
    error: dict[str, Any] = {"code": code, "message": message, "status": status or RPC_STATUS_FOR.get(code)}
    if details:
        error["details"] = details
    return {"error": error}


@dataclass
class ScriptedResponse:
    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class FcmFake:
    def __init__(self, project_id: str = "test-project", token_lifetime: int = 3600) -> None:
        self.project_id = project_id
        self.token_lifetime = token_lifetime
        self.client_email = f"pusher@{project_id}.iam.gserviceaccount.com"
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = self._key.public_key()
        self.sends: list[RecordedRequest] = []
        self.token_requests: list[RecordedRequest] = []
        self.issued_tokens: set[str] = set()
        self._send_script: deque[ScriptedResponse] = deque()
        self._oauth_script: deque[ScriptedResponse] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FcmFake:
        self._server = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fcm-fake",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FcmFake:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- addresses and credentials -----------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def token_uri(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def service_account_info(self) -> dict[str, str]:
        """A service-account JSON dict as Google issues it, pointing at this fake."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "1234567890",
            "token_uri": self.token_uri,
        }

    def reset(self) -> None:
        """Forget scripts, records and issued tokens, so one server can serve many tests."""
        with self._lock:
            self.sends.clear()
            self.token_requests.clear()
            self.issued_tokens.clear()
            self._send_script.clear()
            self._oauth_script.clear()

    # -- scripting ---------------------------------------------------------------------------
    def fail_next(
        self,
        code: int,
        status: str | None = None,
        error_code: str | None = None,
        *,
        message: str = "scripted failure",
        retry_after: str | int | None = None,
        extra_details: list[dict[str, Any]] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` sends answer with this FCM v1 error."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = fcm_error_body(code, status, error_code, message, extra_details)
        with self._lock:
            for _ in range(times):
                self._send_script.append(ScriptedResponse(code, body, headers))

    def delay_next(self, seconds: float) -> None:
        """The next send succeeds, but only after `seconds` (for client timeouts)."""
        with self._lock:
            self._send_script.append(ScriptedResponse(200, None, delay=seconds))

    def fail_oauth(self, error: str = "invalid_grant", description: str = "Invalid JWT Signature.",
                   code: int = 400) -> None:
        """The next token request is refused with Google's OAuth error body."""
        with self._lock:
            self._oauth_script.append(
                ScriptedResponse(code, {"error": error, "error_description": description})
            )

    def expire_tokens(self) -> None:
        """Forget every issued access token: the next send gets 401 ACCESS_TOKEN_EXPIRED."""
        with self._lock:
            self.issued_tokens.clear()

    # -- request handling (called on server threads) -----------------------------------------
    def _next(self, script: deque[ScriptedResponse]) -> ScriptedResponse | None:
        with self._lock:
            return script.popleft() if script else None

    def handle_token(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        form = {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        with self._lock:
            self.token_requests.append(RecordedRequest(TOKEN_PATH, headers, form, time.time()))
        scripted = self._next(self._oauth_script)
        if scripted is not None:
            return scripted.status, scripted.body or {}, scripted.headers
        if form.get("grant_type") != JWT_BEARER:
            return 400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}, {}
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.public_key,
                algorithms=["RS256"],
                audience=[GOOGLE_TOKEN_AUDIENCE, self.token_uri],
                issuer=self.client_email,
                options={"require": ["iat", "exp", "iss", "aud"]},
            )
            kid = jwt.get_unverified_header(form["assertion"]).get("kid")
        except (jwt.PyJWTError, KeyError) as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, {}
        if kid != self.private_key_id or FCM_SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope", "error_description": "bad kid or scope"}, {}
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.add(token)
        return 200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}, {}

    def handle_send(self, path: str, headers: dict[str, str], raw: bytes):
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = None
        with self._lock:
            self.sends.append(RecordedRequest(path, headers, body, time.time()))
        match = SEND_PATH.match(path)
        if not match or match["project"] != self.project_id:
            return 404, fcm_error_body(404, "NOT_FOUND", message="Requested entity was not found."), {}
        auth = headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        with self._lock:
            known = token in self.issued_tokens
        if not known:
            extra = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_EXPIRED"}]
            return 401, fcm_error_body(401, "UNAUTHENTICATED", message="Request had invalid "
                                       "authentication credentials.", extra_details=extra), {}
        scripted = self._next(self._send_script)
        if scripted is not None and scripted.delay:
            time.sleep(scripted.delay)
            scripted = None
        if scripted is not None:
            return scripted.status, scripted.body, scripted.headers
        message = (body or {}).get("message") if isinstance(body, dict) else None
        if not isinstance(message, dict) or not message.get("token"):
            violation = {"@type": BAD_REQUEST_TYPE,
                         "fieldViolations": [{"field": "message.token", "description": "missing"}]}
            return 400, fcm_error_body(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                       "The registration token is not a valid FCM registration token",
                                       [violation]), {}
        data = message.get("data") or {}
        if not all(isinstance(v, str) for v in data.values()):
            return 400, fcm_error_body(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT",
                                       "Invalid value at 'message.data': must be a string"), {}
        return 200, {"name": f"projects/{self.project_id}/messages/{secrets.token_hex(8)}"}, {}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # A client that timed out and hung up is part of the tests, not a failure to print.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _make_handler(fake: FcmFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Google's front ends do

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urllib.parse.urlsplit(self.path).path
            if path == TOKEN_PATH:
                status, body, extra = fake.handle_token(headers, raw)
            else:
                status, body, extra = fake.handle_send(path, headers, raw)
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

    return Handler
