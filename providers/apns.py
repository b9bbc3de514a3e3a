"""iOS push through Apple's HTTP/2 provider API with token (.p8) auth, on httpx + PyJWT.

Not `apns2`: it depends on `hyper`, which fails to import on Python >= 3.10, and it pins
PyJWT < 2 (which would drag twilio back to 6.x). The protocol is small enough to speak
directly: one POST per push over one long-lived, multiplexed HTTP/2 connection, a cached
ES256 provider token (`apns_token`), and a reason table for failures (`apns_errors`).
"""

from __future__ import annotations

import json
import logging
import re
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from .apns_errors import Reason, handling_for
from .apns_token import ProviderTokenCache
from .base import Channel, Delivery, ErrorClass, ProviderError, SendResult

log = logging.getLogger(__name__)

PROVIDER_NAME = "apns"
PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
DEVICE_PATH = "/3/device/{token}"
MAX_PAYLOAD_BYTES = 4096            # Apple's limit for alert and background pushes
NO_EXPIRATION = 0                   # "try once, do not store"
# Device tokens are hex (64 characters today; Apple says the length may change). Checked
# before the token goes into the URL path.
DEVICE_TOKEN_RE = re.compile(r"[0-9A-Fa-f]{16,512}")
# Fixed namespace so that apns-id = uuid5(namespace, attempt id): a retry of the same attempt
# carries the same apns-id, and Apple's feedback can be matched back to the attempt.
APNS_ID_NAMESPACE = uuid.UUID("6f1c9a52-3b0e-4d8e-9a57-2f4f1b7c0a11")
TRUTHY = frozenset({"1", "true", "yes", "on"})
LOW_URGENCIES = frozenset({"low"})


class Env(StrEnum):
    KEY_FILE = "APNS_KEY_FILE"          # path to the .p8 (PEM)
    KEY = "APNS_KEY"                    # the .p8 PEM itself
    KEY_ID = "APNS_KEY_ID"
    TEAM_ID = "APNS_TEAM_ID"
    TOPIC = "APNS_TOPIC"                # the app's bundle id
    USE_SANDBOX = "APNS_USE_SANDBOX"    # "true" / "false"
    BASE_URL = "APNS_BASE_URL"          # override (tests)
    CA_FILE = "APNS_CA_FILE"            # CA bundle to trust instead of the system's (tests)


MAX_COLLAPSE_ID_BYTES = 64  # Apple's limit for apns-collapse-id


class Header(StrEnum):
    AUTHORIZATION = "authorization"
    ID = "apns-id"
    UNIQUE_ID = "apns-unique-id"        # sandbox only: Apple's id for the delivery log
    PUSH_TYPE = "apns-push-type"
    TOPIC = "apns-topic"
    EXPIRATION = "apns-expiration"
    PRIORITY = "apns-priority"
    COLLAPSE_ID = "apns-collapse-id"    # same id: shown as one notification (a resend replaces it)


class PushType(StrEnum):
    ALERT = "alert"
    BACKGROUND = "background"


class Priority(StrEnum):
    IMMEDIATE = "10"      # alerts
    POWER_SAVING = "5"    # background pushes (Apple requires 5) and low urgency


class Code(StrEnum):
    """Our codes for failures that never got an APNs reason."""

    TIMEOUT = "TIMEOUT"
    NETWORK = "NETWORK_ERROR"
    EXPIRED = "EXPIRED_BEFORE_SEND"
    BAD_DEVICE_TOKEN = "BadDeviceToken"


def apns_id_for(attempt_id: str) -> str:
    return str(uuid.uuid5(APNS_ID_NAMESPACE, attempt_id))


def _redact(token: str) -> str:
    return f"{token[:8]}…({len(token)})"


def _epoch(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive datetimes in this codebase are UTC
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def build_payload(delivery: Delivery) -> tuple[PushType, dict[str, Any]]:
    alert = {k: v for k, v in (("title", delivery.title), ("body", delivery.body)) if v}
    if alert:
        push_type = PushType.ALERT
        aps: dict[str, Any] = {"alert": alert, "sound": "default"}
        if delivery.image_url:
            aps["mutable-content"] = 1   # lets the app's service extension fetch the image
    else:
        push_type = PushType.BACKGROUND
        aps = {"content-available": 1}
    payload: dict[str, Any] = dict(delivery.data)
    # The client reports seen/read/clicked against our message id, so it travels with the push.
    payload.setdefault("message_id", delivery.message_id)
    if delivery.image_url:
        payload.setdefault("image_url", delivery.image_url)
    if delivery.action_url:
        payload.setdefault("action_url", delivery.action_url)
    payload["aps"] = aps   # last: custom data must not replace Apple's dictionary
    return push_type, payload


def build_headers(delivery: Delivery, push_type: PushType, topic: str, now: float) -> dict[str, str]:
    expiration = NO_EXPIRATION
    if delivery.expires_at is not None:
        expiration = _epoch(delivery.expires_at)
        if expiration <= now:
            raise ProviderError(
                ErrorClass.PERMANENT, Code.EXPIRED, "expires_at has passed", provider=PROVIDER_NAME
            )
    low = push_type == PushType.BACKGROUND or delivery.urgency in LOW_URGENCIES
    headers = {
        Header.ID: apns_id_for(delivery.attempt_id),
        Header.PUSH_TYPE: push_type,
        Header.TOPIC: topic,
        Header.EXPIRATION: str(expiration),
        Header.PRIORITY: Priority.POWER_SAVING if low else Priority.IMMEDIATE,
    }
    if push_type == PushType.ALERT and len(delivery.attempt_id.encode()) <= MAX_COLLAPSE_ID_BYTES:
        # A resend of the same attempt (after an uncertain send) replaces the first on the
        # device instead of showing twice.
        headers[Header.COLLAPSE_ID] = delivery.attempt_id
    return headers


def _verify_setting(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    # httpx 0.28 deprecates a CA path in `verify`; an SSLContext is the supported form.
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class APNsProvider:
    name = PROVIDER_NAME
    channel = Channel.PUSH

    def __init__(
        self,
        key_pem: str,
        key_id: str,
        team_id: str,
        topic: str,
        *,
        use_sandbox: bool = False,
        base_url: str | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 10.0,
        jwt_ttl_seconds: float = 40 * 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.topic = topic
        self.use_sandbox = use_sandbox
        self.base_url = (base_url or (SANDBOX_URL if use_sandbox else PRODUCTION_URL)).rstrip("/")
        self._clock = clock
        self.tokens = ProviderTokenCache(key_pem, key_id, team_id, ttl_seconds=jwt_ttl_seconds, clock=clock)
        # One client, one pooled HTTP/2 connection multiplexing every send from every thread;
        # Apple asks providers to keep connections open rather than reconnect per push.
        self._client = httpx.Client(
            http2=True,
            base_url=self.base_url,
            verify=_verify_setting(verify),
            timeout=timeout,
        )
        # httpcore's synchronous HTTP/2 connection is not safe for concurrent requests from
        # several threads: two threads can open streams at once and corrupt the h2 state
        # ("Received pseudo-header in trailer", "Trailers must have END_STREAM set"), which
        # the resend below would turn into duplicate pushes. One request at a time on the
        # connection; a push takes about a millisecond on a warm connection.
        self._send_lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> APNsProvider | None:
        key_file = env.get(Env.KEY_FILE)
        if key_file:
            try:
                with open(key_file, encoding="utf-8") as fh:
                    key_pem = fh.read()
            except OSError as exc:
                raise ValueError(f"{Env.KEY_FILE}={key_file} cannot be read ({exc.strerror}): point it at the "
                                 f".p8 key, or unset it for sandbox push") from None
        else:
            key_pem = env.get(Env.KEY) or ""
        if not key_pem:
            partial = [name.value for name in (Env.KEY_ID, Env.TEAM_ID, Env.TOPIC) if env.get(name)]
            if partial:
                # Half a configuration is a mistake, not a request for sandbox.
                raise ValueError(f"{', '.join(partial)} set but neither {Env.KEY_FILE} nor {Env.KEY}: set the "
                                 f".p8 key (and {Env.KEY_ID}, {Env.TEAM_ID}, {Env.TOPIC}), or unset all APNS_* "
                                 f"for sandbox push")
            return None
        if "\\n" in key_pem and "\n" not in key_pem.strip():
            key_pem = key_pem.replace("\\n", "\n")   # PEM squeezed onto one env line
        missing = [name for name in (Env.KEY_ID, Env.TEAM_ID, Env.TOPIC) if not env.get(name)]
        if missing:
            raise ValueError(f"the APNs key is set but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                             f"not: set {', '.join(missing)}, or unset all APNS_* for sandbox push")
        return cls(
            key_pem,
            env[Env.KEY_ID],
            env[Env.TEAM_ID],
            env[Env.TOPIC],
            use_sandbox=env.get(Env.USE_SANDBOX, "").strip().lower() in TRUTHY,
            base_url=env.get(Env.BASE_URL) or None,
            verify=env.get(Env.CA_FILE) or True,
        )

    def send(self, delivery: Delivery) -> SendResult:
        device = delivery.to
        if not DEVICE_TOKEN_RE.fullmatch(device or ""):
            raise ProviderError(ErrorClass.PERMANENT, Code.BAD_DEVICE_TOKEN, "not a hex device token",
                                provider=self.name, deactivate_address=True)
        push_type, payload = build_payload(delivery)
        headers = build_headers(delivery, push_type, self.topic, self._clock())
        content = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        if len(content) > MAX_PAYLOAD_BYTES:
            # APNs would refuse it with 413; no need to spend a request finding out.
            raise ProviderError(ErrorClass.PERMANENT, Reason.PAYLOAD_TOO_LARGE,
                                f"{len(content)} bytes > {MAX_PAYLOAD_BYTES}", provider=self.name)

        bearer = self.tokens.get()
        for first_try in (True, False):
            response = self._post(device, content, {**headers, Header.AUTHORIZATION: f"bearer {bearer}"})
            if response.status_code == httpx.codes.OK:
                apns_id = response.headers.get(Header.ID, headers[Header.ID])
                raw = {"apns-id": apns_id, "http_version": response.http_version}
                if Header.UNIQUE_ID in response.headers:
                    raw["apns-unique-id"] = response.headers[Header.UNIQUE_ID]
                return SendResult(self.name, apns_id, sandboxed=False, raw=raw)
            reason, detail = self._reason(response)
            handling = handling_for(response.status_code, reason)
            if handling.resign and first_try:
                bearer = self.tokens.renew(bearer)
                continue
            log.info("apns send to %s failed: %s %s", _redact(device), response.status_code, reason)
            raise ProviderError(
                handling.error_class,
                reason or f"HTTP_{response.status_code}",
                detail,
                provider=self.name,
                deactivate_address=handling.deactivate_address,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _post(self, device: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        path = DEVICE_PATH.format(token=device)
        try:
            try:
                with self._send_lock:
                    return self._client.post(path, content=content, headers=headers)
            except (httpx.WriteError, httpx.RemoteProtocolError):
                # The pooled connection had already been closed by Apple (idle, GOAWAY, a dead
                # socket). Depending on timing, httpx reports that as a failed write or as
                # "Server disconnected" before any response. Either way: one resend on a fresh
                # connection, with the same apns-id. In the rare case Apple had taken the
                # request before dropping the connection that is one duplicate, within the
                # service's at-least-once contract; anything further is left to the caller.
                log.debug("apns connection was closed; reconnecting")
                with self._send_lock:
                    return self._client.post(path, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            detail = f"{type(exc).__name__}: {exc}"[:200]
            raise ProviderError(ErrorClass.TRANSIENT, Code.TIMEOUT, detail, provider=self.name) from exc
        except httpx.TransportError as exc:   # connect refused, TLS, reset, GOAWAY mid-stream
            detail = f"{type(exc).__name__}: {exc}"[:200]
            raise ProviderError(ErrorClass.TRANSIENT, Code.NETWORK, detail, provider=self.name) from exc

    @staticmethod
    def _reason(response: httpx.Response) -> tuple[str | None, str]:
        try:
            body = response.json()
        except ValueError:
            return None, response.text[:200]
        if not isinstance(body, dict):
            return None, ""
        detail = f"HTTP {response.status_code}"
        if "timestamp" in body:   # 410: when the token stopped being valid (ms since epoch)
            detail += f", invalid since {body['timestamp']}"
        return body.get("reason"), detail

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> APNsProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
