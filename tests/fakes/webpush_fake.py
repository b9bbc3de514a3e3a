"""A local push service that speaks Web Push (RFC 8030) as browsers' push services do, and
checks what a real one checks before it takes a message:

- VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<public key>`; the JWT is ES256, signed
  by that key, its `aud` is the endpoint's origin, `exp` lies in the future and at most 24 hours
  ahead, `sub` is a `mailto:` or `https:` contact. Otherwise 401 (no or bad header) or 403.
- Message encryption (RFC 8291, `Content-Encoding: aes128gcm`): the body is decrypted with the
  subscription's private key and auth secret, which only this fake and the "browser" hold; a
  body that does not decrypt is refused (400). At most 4,096 bytes (413). A `TTL` header is
  required (400 without); `Urgency`, when sent, is one of RFC 8030's four values.
- A subscription the browser dropped answers 410 Gone (`expire`); one never issued, 404.

    with WebPushFake() as push:
        subscription = push.subscribe()          # what the browser's PushManager would hand over
        ...                                      # send to subscription["endpoint"]
        push.received[-1].payload                # the decrypted bytes

`fail_next(status, retry_after=None)` answers the next request with that status. Answers are
written in one piece with TCP_NODELAY, like the other fakes.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_BODY = 4096
URGENCIES = ("very-low", "low", "normal", "high")
MAX_EXP_AHEAD = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class PushMessage:
    endpoint: str
    headers: dict[str, str]
    payload: bytes          # decrypted
    claims: dict[str, Any]  # the VAPID JWT's


@dataclass
class _Subscription:
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    expired: bool = False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, headers = self.server.fake._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        head = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}", "Content-Length: 0", *headers]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode())


class WebPushFake:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._server = ThreadingHTTPServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                                        name="webpush-fake", daemon=True)
        self._subscriptions: dict[str, _Subscription] = {}
        self._script: deque[tuple[int, list[str]]] = deque()
        self._lock = threading.Lock()
        self.received: list[PushMessage] = []
        self.refused: list[tuple[int, str]] = []  # (status, why) of each request turned down

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebPushFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def subscribe(self) -> dict[str, Any]:
        """A new subscription, as `PushSubscription.toJSON()` gives it in a browser."""
        key = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        path = "/push/" + secrets.token_urlsafe(24)
        with self._lock:
            self._subscriptions[path] = _Subscription(key, auth)
        public = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.origin + path, "expirationTime": None,
                "keys": {"p256dh": b64url(public), "auth": b64url(auth)}}

    def expire(self, endpoint: str) -> None:
        """The browser dropped the subscription: the push service answers 410 from now on."""
        with self._lock:
            self._subscriptions[endpoint.removeprefix(self.origin)].expired = True

    def fail_next(self, status: int, retry_after: int | None = None) -> None:
        self._script.append((status, [f"Retry-After: {retry_after}"] if retry_after is not None else []))

    # --- handling -----------------------------------------------------------------------
    def _refuse(self, status: int, why: str) -> tuple[int, list[str]]:
        self.refused.append((status, why))
        return status, []

    def _handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list[str]]:
        if self._script:
            return self._script.popleft()
        with self._lock:
            subscription = self._subscriptions.get(path)
        if subscription is None:
            return self._refuse(404, "no such subscription")
        if subscription.expired:
            return self._refuse(410, "subscription expired")
        claims, why = self._check_vapid(headers.get("authorization", ""))
        if claims is None:
            return self._refuse(401 if why == "missing" else 403, why)
        ttl = headers.get("ttl", "")
        if not ttl.isdigit():
            return self._refuse(400, "TTL header missing or not a number")
        if "urgency" in headers and headers["urgency"] not in URGENCIES:
            return self._refuse(400, "bad Urgency")
        if len(body) > MAX_BODY:
            return self._refuse(413, "payload too large")
        if headers.get("content-encoding") != "aes128gcm":
            return self._refuse(400, "Content-Encoding is not aes128gcm")
        try:
            payload = http_ece.decrypt(body, private_key=subscription.private_key, auth_secret=subscription.auth,
                                       version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 - any failure to decrypt is the sender's fault
            return self._refuse(400, f"payload does not decrypt: {type(exc).__name__}")
        with self._lock:
            self.received.append(PushMessage(self.origin + path, headers, payload, claims))
        return 201, [f"Location: {self.origin}/message/{secrets.token_urlsafe(8)}"]

    def _check_vapid(self, authorization: str) -> tuple[dict[str, Any] | None, str]:
        if not authorization.lower().startswith("vapid "):
            return None, "missing"
        params = dict(part.strip().split("=", 1) for part in authorization[6:].split(",") if "=" in part)
        token, key = params.get("t"), params.get("k")
        if not token or not key:
            return None, "vapid header lacks t= or k="
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
            claims = jwt.decode(token, public, algorithms=["ES256"], audience=self.origin,
                                options={"require": ["aud", "exp", "sub"]})
        except (ValueError, jwt.PyJWTError) as exc:
            return None, f"bad VAPID JWT: {type(exc).__name__}"
        if claims["exp"] > time.time() + MAX_EXP_AHEAD:
            return None, "VAPID exp more than 24 hours ahead"
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            return None, "VAPID sub is not a mailto: or https: contact"
        return claims, ""
