"""Push to browsers with Web Push (RFC 8030) and VAPID (RFC 8292), using pywebpush 2.x.

The device token is the browser's subscription as `PushSubscription.toJSON()` gives it
(`{"endpoint", "keys": {"p256dh", "auth"}}`), registered through the in-app client's
`POST /v1/inbox/devices` with platform `webpush`. The payload is JSON (title, body, url,
message id), encrypted (aes128gcm) by pywebpush; the VAPID JWT names our contact (`sub`).

Endpoints are URLs a browser chose, so a send goes only to the push services in
WEBPUSH_ENDPOINT_HOSTS (by default the browsers' own, over https): a subscription naming any
other host is refused and its device deactivated, never fetched. pywebpush is synchronous
(requests): every send has a timeout and no retries; a 429/5xx is returned as transient with
its Retry-After for the orchestrator to schedule.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import Vapid, WebPushException, webpush
from requests.adapters import HTTPAdapter

from .base import Channel, Delivery, ErrorClass, ProviderError, SendResult
from .retry_after import parse_retry_after
from .spec import ProviderSpec

log = logging.getLogger(__name__)

PROVIDER_NAME = "webpush"
DEFAULT_TTL_SECONDS = 24 * 3600
MAX_TTL_SECONDS = 28 * 24 * 3600
MAX_PAYLOAD_BYTES = 3800  # push services take 4,096 encrypted bytes; aes128gcm adds ~100
HIGH_URGENCIES = frozenset({"high", "critical"})
# The push services of Chrome/Edge/Android (FCM), Firefox (Mozilla), Windows (WNS), Safari.
DEFAULT_ENDPOINT_HOSTS = ("fcm.googleapis.com", ".push.services.mozilla.com", ".notify.windows.com",
                          ".push.apple.com")


class Env(StrEnum):
    VAPID_PRIVATE_KEY = "WEBPUSH_VAPID_PRIVATE_KEY"  # base64url raw P-256 key (as web-push tools print it) or PEM
    VAPID_SUBJECT = "WEBPUSH_VAPID_SUBJECT"          # mailto:ops@example.com or https://example.com/contact
    ENDPOINT_HOSTS = "WEBPUSH_ENDPOINT_HOSTS"        # push services we send to; ".example.com" = its subdomains


class Code(StrEnum):
    """Our codes for web push failures (an HTTP answer is `HTTP_<status>`)."""

    TIMEOUT = "TIMEOUT"
    NETWORK = "NETWORK_ERROR"
    BAD_SUBSCRIPTION = "BAD_SUBSCRIPTION"          # not subscription JSON, or a host we do not send to
    EXPIRED = "EXPIRED_BEFORE_SEND"


@dataclass(frozen=True)
class Handling:
    error_class: ErrorClass
    deactivate_address: bool = False


DEAD_SUBSCRIPTION = Handling(ErrorClass.PERMANENT, deactivate_address=True)
# The push service's answer (RFC 8030 §5, RFC 8292 §4) -> what we do with it.
BY_HTTP_STATUS: dict[int, Handling] = {
    400: Handling(ErrorClass.PERMANENT),         # malformed request (headers, encryption)
    401: Handling(ErrorClass.CONFIGURATION),     # VAPID refused: our key or JWT
    403: Handling(ErrorClass.CONFIGURATION),     # VAPID key not the one the subscription was made with
    404: DEAD_SUBSCRIPTION,                      # no such subscription
    410: DEAD_SUBSCRIPTION,                      # the browser dropped it
    413: Handling(ErrorClass.PERMANENT),         # payload too large
    429: Handling(ErrorClass.TRANSIENT),
}


def handling_for(status: int) -> Handling:
    if status in BY_HTTP_STATUS:
        return BY_HTTP_STATUS[status]
    return Handling(ErrorClass.TRANSIENT if status >= 500 or status == 408 else ErrorClass.PERMANENT)


def _b64url_bytes(text: Any) -> bytes | None:
    if not isinstance(text, str) or not text or len(text) > 200:
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None


def parse_subscription(token: str) -> tuple[dict[str, Any] | None, str]:
    """The subscription in a device token, or (None, what is wrong with it)."""
    try:
        data = json.loads(token)
    except ValueError:
        return None, "a webpush token is the subscription JSON: {endpoint, keys: {p256dh, auth}}"
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        return None, "a webpush token is the subscription JSON: {endpoint, keys: {p256dh, auth}}"
    endpoint = data.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
        return None, "endpoint: the push service's http(s) URL"
    p256dh = _b64url_bytes(data["keys"].get("p256dh"))
    if p256dh is None or len(p256dh) != 65 or p256dh[0] != 4:
        return None, "keys.p256dh: the browser's P-256 public key, base64url"
    auth = _b64url_bytes(data["keys"].get("auth"))
    if auth is None or len(auth) != 16:
        return None, "keys.auth: the 16-byte auth secret, base64url"
    return {"endpoint": endpoint, "keys": {"p256dh": data["keys"]["p256dh"], "auth": data["keys"]["auth"]}}, ""


def check_token(token: str) -> str | None:
    return parse_subscription(token)[1] or None


def _load_key(text: str) -> Vapid:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            vapid = Vapid.from_pem(text.encode())
        else:  # 32 raw bytes, or a base64url DER key; a short string would derive a weak key
            decoded = _b64url_bytes(text) if len(text) < 200 else b"der"
            vapid = Vapid.from_raw(text.encode()) if decoded and len(decoded) == 32 else Vapid.from_der(text.encode())
        key = vapid.private_key
    except Exception:  # noqa: BLE001 - py_vapid raises whatever its decoder does; never echo the key
        key = None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{Env.VAPID_PRIVATE_KEY} is not a P-256 private key: give the base64url raw key "
                         f"(as `npx web-push generate-vapid-keys` prints it) or a PEM")
    return vapid


@dataclass(frozen=True, repr=False)  # no repr: it holds the private key
class WebPushSettings:
    vapid: Vapid
    subject: str
    endpoint_hosts: tuple[str, ...] = DEFAULT_ENDPOINT_HOSTS
    allow_http: bool = False  # only for hosts named in WEBPUSH_ENDPOINT_HOSTS (a local push service)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> WebPushSettings | None:
        """None when WEBPUSH_VAPID_PRIVATE_KEY is unset (web push sandboxed)."""
        raw = env.get(Env.VAPID_PRIVATE_KEY, "")
        if not raw.strip():
            return None
        vapid = _load_key(raw)
        subject = env.get(Env.VAPID_SUBJECT, "").strip()
        if not subject.startswith(("mailto:", "https://")) or len(subject) < 10 or any(c.isspace() for c in subject):
            raise ValueError(f"{Env.VAPID_SUBJECT} must be a mailto: or https: contact for the push services, "
                             f"like {Env.VAPID_SUBJECT}=mailto:ops@example.com")
        hosts = tuple(h.strip().lower() for h in env.get(Env.ENDPOINT_HOSTS, "").split(",") if h.strip())
        return cls(vapid, subject, hosts or DEFAULT_ENDPOINT_HOSTS, allow_http=bool(hosts))


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def build_payload(delivery: Delivery) -> bytes:
    """What the service worker's `push` event reads: title, body, url and the message id
    (the client reports seen/read/clicked against it). A long body is cut to fit."""
    body = delivery.body or ""
    while True:
        payload = {"title": delivery.title or "", "body": body, "url": delivery.action_url or None,
                   "message_id": delivery.message_id, "image": delivery.image_url or None}
        raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        if len(raw) <= MAX_PAYLOAD_BYTES or not body:
            return raw
        keep = len(body.encode()) - (len(raw) - MAX_PAYLOAD_BYTES) - len("…".encode())
        body = body.encode()[:max(0, keep)].decode(errors="ignore").rstrip()
        body = body + "…" if body else ""


class WebPushProvider:
    name = PROVIDER_NAME
    channel = Channel.PUSH

    def __init__(self, settings: WebPushSettings, *, timeout: float = 10.0, max_retry_after: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retry_after = max_retry_after
        self._clock = clock
        self._session = requests.Session()
        self._adapter = HTTPAdapter(max_retries=0, pool_maxsize=16)
        self._session.mount("https://", self._adapter)
        self._session.mount("http://", self._adapter)

    @classmethod
    def from_settings(cls, settings: WebPushSettings) -> WebPushProvider:
        return cls(settings)

    def _allowed(self, endpoint: str) -> bool:
        parts = urlsplit(endpoint)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" and not (parts.scheme == "http" and self.settings.allow_http):
            return False
        netloc = parts.netloc.lower().rpartition("@")[2]
        return any(host == h or netloc == h or (h.startswith(".") and host.endswith(h))
                   for h in self.settings.endpoint_hosts)

    def _ttl(self, delivery: Delivery) -> int:
        if delivery.expires_at is None:
            return DEFAULT_TTL_SECONDS
        ttl = math.ceil(_epoch(delivery.expires_at) - self._clock())
        if ttl <= 0:
            raise ProviderError(ErrorClass.PERMANENT, Code.EXPIRED, "expires_at has passed", provider=self.name)
        return min(ttl, MAX_TTL_SECONDS)

    def send(self, delivery: Delivery) -> SendResult:
        subscription, problem = parse_subscription(delivery.to)
        if subscription is None or not self._allowed(subscription["endpoint"]):
            why = problem or "endpoint is not a push service in WEBPUSH_ENDPOINT_HOSTS"
            raise ProviderError(ErrorClass.PERMANENT, Code.BAD_SUBSCRIPTION, why, provider=self.name,
                                deactivate_address=True)
        headers = {"Urgency": "high" if delivery.urgency in HIGH_URGENCIES else "normal"}
        try:
            response = webpush(subscription, build_payload(delivery), vapid_private_key=self.settings.vapid,
                               vapid_claims={"sub": self.settings.subject}, content_encoding="aes128gcm",
                               ttl=self._ttl(delivery), timeout=self.timeout, headers=headers,
                               requests_session=self._session)
        except WebPushException as exc:
            if exc.response is None:  # pywebpush refused the subscription itself
                raise ProviderError(ErrorClass.PERMANENT, Code.BAD_SUBSCRIPTION, exc.message[:200],
                                    provider=self.name, deactivate_address=True) from None
            raise self._http_error(exc.response) from None
        except ValueError as exc:  # the subscription's key is not a point on the curve
            raise ProviderError(ErrorClass.PERMANENT, Code.BAD_SUBSCRIPTION, type(exc).__name__,
                                provider=self.name, deactivate_address=True) from None
        except requests.Timeout:
            raise ProviderError(ErrorClass.TRANSIENT, Code.TIMEOUT, f"no answer in {self.timeout:g}s",
                                provider=self.name) from None
        except requests.RequestException as exc:
            raise ProviderError(ErrorClass.TRANSIENT, Code.NETWORK, type(exc).__name__, provider=self.name) from None
        location = response.headers.get("Location", "")
        return SendResult(provider=self.name, provider_message_id=location[-200:] or delivery.attempt_id,
                          raw={"status": response.status_code})

    def _http_error(self, response: requests.Response) -> ProviderError:
        status = response.status_code
        handling = handling_for(status)
        retry_after = None
        if handling.error_class == ErrorClass.TRANSIENT:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), cap=self.max_retry_after)
        # The endpoint is the subscription's secret-ish address: only its host goes to the log.
        log.info("webpush send to %s failed: %s", urlsplit(response.url or "").hostname, status)
        return ProviderError(handling.error_class, f"HTTP_{status}", (response.reason or "")[:100],
                             provider=self.name, retry_after=retry_after,
                             deactivate_address=handling.deactivate_address)

    def close(self) -> None:
        self._session.close()


# Push platform "webpush"; a dead subscription (404/410) shows as ProviderError.deactivate_address
# at send time, as FCM's UNREGISTERED does.
SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.PUSH, rank=32, platform=PROVIDER_NAME,
                    settings=WebPushSettings.from_env, build=WebPushProvider.from_settings, check_token=check_token)
