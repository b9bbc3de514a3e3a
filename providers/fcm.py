"""Push to Android and web through Firebase Cloud Messaging (HTTP v1), using pyfcm 2.x.

Credentials are a service-account dict held in memory (never written to disk); OAuth goes to
`token_uri` and sends go to `endpoint_base`, both overridable so tests point them at a local
fake. pyfcm does the payload building and the HTTP session; a small subclass replaces the
parts of it that are unsafe for a worker (see `_GuardedFCMNotification`). Failures are
classified by the data tables in `fcm_errors`.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import (
    AuthenticationError,
    FCMError,
    FCMNotRegisteredError,
    FCMSenderIdMismatchError,
    FCMServerError,
    InvalidDataError,
)
from requests.adapters import HTTPAdapter

from .base import Channel, Delivery, ErrorClass, ProviderError, SendResult
from .fcm_errors import PROVIDER_NAME, classify_response
from .spec import ProviderSpec

log = logging.getLogger(__name__)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
DEFAULT_ENDPOINT_BASE = "https://fcm.googleapis.com"
HIGH_URGENCIES = frozenset({"high", "critical"})


class Env(StrEnum):
    CREDENTIALS_FILE = "FCM_CREDENTIALS_FILE"   # path to the service-account JSON
    CREDENTIALS_JSON = "FCM_CREDENTIALS_JSON"   # the service-account JSON itself
    PROJECT_ID = "FCM_PROJECT_ID"               # defaults to the JSON's project_id
    ENDPOINT = "FCM_ENDPOINT"                   # base URL override (tests)
    TOKEN_URI = "FCM_TOKEN_URI"                 # OAuth token endpoint override (tests)


class AndroidPriority(StrEnum):
    NORMAL = "NORMAL"
    HIGH = "HIGH"


class Code(StrEnum):
    """Our codes for failures that never reached an FCM error body."""

    TIMEOUT = "TIMEOUT"
    NETWORK = "NETWORK_ERROR"
    OAUTH_REFUSED = "OAUTH_REFRESH_FAILED"
    OAUTH_UNREACHABLE = "OAUTH_UNREACHABLE"
    NO_MESSAGE_NAME = "NO_MESSAGE_NAME"
    EXPIRED = "EXPIRED_BEFORE_SEND"


# pyfcm's own exceptions, for the paths where it still raises them (empty 200 body, bad
# payload types). Our subclass raises FCMResponseError for every non-200, so these are the
# fallback, ordered most specific first because they share the FCMError base.
PYFCM_EXCEPTIONS: tuple[tuple[type[FCMError], ErrorClass, bool], ...] = (
    (FCMNotRegisteredError, ErrorClass.PERMANENT, True),
    (FCMSenderIdMismatchError, ErrorClass.PERMANENT, True),
    (AuthenticationError, ErrorClass.CONFIGURATION, False),
    (InvalidDataError, ErrorClass.PERMANENT, False),
    (FCMServerError, ErrorClass.TRANSIENT, False),
    (FCMError, ErrorClass.TRANSIENT, False),
)


class FCMResponseError(FCMError):
    """A non-200 answer from FCM, with everything pyfcm's own errors throw away."""

    def __init__(self, status_code: int, body: Any, headers: Mapping[str, str]) -> None:
        super().__init__(f"FCM answered {status_code}")
        self.status_code = status_code
        self.body = body
        self.headers = headers


class _OAuthRequest(google.auth.transport.requests.Request):
    """google-auth's transport defaults to a 120 s timeout; a worker cannot wait that long."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method, body, headers, timeout or self._timeout, **kwargs)


class _GuardedFCMNotification(FCMNotification):
    """pyfcm's client with the behaviour a worker cannot live with written out by hand; none of
    it is configurable in pyfcm 2.1:

    - `send_request`: stock pyfcm sleeps for whatever Retry-After says and then recurses, so
      a 429 with `Retry-After: 3600` parks the worker thread for an hour; it also recurses
      without limit on ACCESS_TOKEN_EXPIRED. Ours never sleeps: the response is classified
      transient with `retry_after` and the orchestrator schedules the retry within the
      attempt's deadline. An expired access token is refreshed and the send retried once.
    - the adapter: stock mounts urllib3 `Retry(status_forcelist=[502, 503])`, which also
      obeys Retry-After — a second, hidden sleep. Ours mounts an adapter with no retries.
    - `_get_access_token`: stock refreshes per thread and wraps every OAuth failure in
      InvalidDataError, losing whether it was a refused grant (configuration) or an
      unreachable endpoint (transient). Ours shares one token across threads under a lock
      and lets google.auth's exceptions through.
    - `parse_response`: stock turns every 403 into SenderIdMismatch, 429 into a generic
      server error, and drops the JSON details and Retry-After. Ours raises FCMResponseError
      carrying status, body and headers for `fcm_errors.classify_response`.
    """

    def __init__(self, credentials, endpoint: str, *, timeout: float, pool_maxsize: int = 16) -> None:
        self._adapter = HTTPAdapter(max_retries=0, pool_maxsize=pool_maxsize)
        super().__init__(credentials=credentials, adapter=self._adapter)
        # pyfcm's `fcm_end_point` property returns this when set; setting it is the
        # supported way to aim at another host and to pick the project ourselves.
        self._fcm_end_point = endpoint
        self._token_lock = threading.Lock()
        self._oauth_request = _OAuthRequest(timeout)

    def _get_access_token(self) -> str:
        with self._token_lock:
            if not self.credentials.valid:
                self.credentials.refresh(self._oauth_request)
            return self.credentials.token

    def _forget_token(self, token: str) -> None:
        with self._token_lock:
            # Only if no other thread already replaced it: one refresh per expiry, not per thread.
            if self.credentials.token == token:
                self.credentials.token = None

    def send_request(self, payload=None, timeout=None):
        for first_try in (True, False):
            token = self._get_access_token()
            response = self.requests_session.post(
                self.fcm_end_point,
                data=payload,
                timeout=timeout,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            if first_try and self._is_access_token_expired(response):
                self._forget_token(token)
                continue
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def parse_response(self, response):
        if response.status_code == 200:
            return super().parse_response(response)
        try:
            body = response.json()
        except ValueError:
            body = None
        raise FCMResponseError(response.status_code, body, response.headers)

    def close(self) -> None:
        self._adapter.close()


def _redact(token: str) -> str:
    return f"{token[:8]}…({len(token)})"


def _as_fcm_string(value: Any) -> str:
    # FCM's data map is string → string; anything else is sent as its JSON text.
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def _epoch(moment: datetime) -> float:
    if moment.tzinfo is None:  # naive datetimes in this codebase are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def build_notify_kwargs(delivery: Delivery, now: float) -> dict[str, Any]:
    """The keyword arguments for `FCMNotification.notify` that carry one delivery."""
    high = delivery.urgency in HIGH_URGENCIES
    data = {str(k): _as_fcm_string(v) for k, v in delivery.data.items()}
    # The client reports seen/read/clicked against our message id, so it travels with the push.
    data.setdefault("message_id", delivery.message_id)
    if delivery.action_url:
        data.setdefault("action_url", delivery.action_url)

    android: dict[str, Any] = {"priority": AndroidPriority.HIGH if high else AndroidPriority.NORMAL}
    webpush_headers = {"Urgency": "high" if high else "normal"}
    apns_headers: dict[str, str] = {"apns-priority": "10"} if high else {}
    if delivery.expires_at is not None:
        expires = _epoch(delivery.expires_at)
        ttl = math.ceil(expires - now)
        if ttl <= 0:
            raise ProviderError(
                ErrorClass.PERMANENT, Code.EXPIRED, "expires_at has passed", provider=PROVIDER_NAME
            )
        android["ttl"] = f"{ttl}s"
        webpush_headers["TTL"] = str(ttl)
        apns_headers["apns-expiration"] = str(int(expires))

    if delivery.title or delivery.body:
        # One collapse id per attempt: a resend of the same attempt (after an uncertain send)
        # replaces the first rather than adding a second (Android collapse_key while queued,
        # APNs collapse id, Web Push Topic).
        android["collapse_key"] = delivery.attempt_id
        apns_headers["apns-collapse-id"] = delivery.attempt_id[:64]
        if len(delivery.attempt_id) <= 32 and delivery.attempt_id.replace("-", "").replace("_", "").isalnum():
            webpush_headers["Topic"] = delivery.attempt_id
    return {
        "fcm_token": delivery.to,
        "notification_title": delivery.title or None,
        "notification_body": delivery.body or None,
        "notification_image": delivery.image_url or None,
        "data_payload": data,
        "android_config": {k: str(v) for k, v in android.items()},
        "webpush_config": {"headers": webpush_headers},
        "apns_config": {"headers": apns_headers} if apns_headers else None,
    }


@dataclass(frozen=True, repr=False)  # no repr: the service-account JSON holds the private key
class FcmSettings:
    """The FCM_* variables: the service account (from a file or inline), checked."""

    service_account_info: dict
    project_id: str | None = None
    endpoint: str | None = None
    token_uri: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FcmSettings | None:
        """None when neither FCM_CREDENTIALS_FILE nor FCM_CREDENTIALS_JSON is set (sandbox push)."""
        path = env.get(Env.CREDENTIALS_FILE)
        raw = env.get(Env.CREDENTIALS_JSON)
        if path:
            try:
                with open(path, encoding="utf-8") as fh:
                    raw = fh.read()
            except OSError as exc:
                raise ValueError(f"{Env.CREDENTIALS_FILE}={path} cannot be read ({exc.strerror}): point it at the "
                                 f"service-account JSON, or unset it for sandbox push") from None
            source = Env.CREDENTIALS_FILE
        elif raw:
            source = Env.CREDENTIALS_JSON
        else:
            return None
        try:
            info = json.loads(raw)
        except ValueError:
            # `from None`: the decode error carries the document, i.e. the private key.
            raise ValueError(f"{source} does not hold valid service-account JSON") from None
        return cls(info, project_id=env.get(Env.PROJECT_ID) or None, endpoint=env.get(Env.ENDPOINT) or None,
                   token_uri=env.get(Env.TOKEN_URI) or None)


class FCMProvider:
    name = PROVIDER_NAME
    channel = Channel.PUSH

    def __init__(
        self,
        service_account_info: dict,
        *,
        project_id: str | None = None,
        endpoint_base: str | None = None,
        token_uri: str | None = None,
        timeout: float = 10.0,
        max_retry_after: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project_id = project_id or service_account_info.get("project_id")
        if not self.project_id:
            raise ValueError("FCM needs a project id: set FCM_PROJECT_ID or project_id in the JSON")
        credentials = service_account.Credentials.from_service_account_info(
            service_account_info, scopes=[SCOPE]
        )
        if token_uri:
            credentials = credentials.with_token_uri(token_uri)
        base = (endpoint_base or DEFAULT_ENDPOINT_BASE).rstrip("/")
        self.endpoint = f"{base}/v1/projects/{self.project_id}/messages:send"
        self.timeout = timeout
        # Longest delay we pass on as `retry_after`; FCM's hint can be an hour, and the
        # orchestrator's own backoff (bounded by the attempt's deadline) takes it from there.
        self.max_retry_after = max_retry_after
        self._clock = clock
        self._client = _GuardedFCMNotification(credentials, self.endpoint, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: FcmSettings) -> FCMProvider:
        return cls(settings.service_account_info, project_id=settings.project_id,
                   endpoint_base=settings.endpoint, token_uri=settings.token_uri)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FCMProvider | None:
        settings = FcmSettings.from_env(env)
        return cls.from_settings(settings) if settings is not None else None

    def send(self, delivery: Delivery) -> SendResult:
        kwargs = build_notify_kwargs(delivery, self._clock())
        try:
            answer = self._client.notify(**kwargs, timeout=self.timeout)
        except FCMResponseError as exc:
            error = classify_response(
                exc.status_code, exc.body, exc.headers, max_retry_after=self.max_retry_after
            )
            log.info("fcm send to %s failed: %s", _redact(delivery.to), error)
            raise error from exc
        except google.auth.exceptions.RefreshError as exc:
            # invalid_grant & co.: the key is revoked or wrong. google-auth marks 5xx/429 from
            # the token endpoint retryable (after retrying them itself a few times).
            error_class = ErrorClass.TRANSIENT if exc.retryable else ErrorClass.CONFIGURATION
            raise self._error(error_class, Code.OAUTH_REFUSED, exc) from exc
        except google.auth.exceptions.TransportError as exc:
            raise self._error(ErrorClass.TRANSIENT, Code.OAUTH_UNREACHABLE, exc) from exc
        except requests.Timeout as exc:
            raise self._error(ErrorClass.TRANSIENT, Code.TIMEOUT, exc) from exc
        except requests.RequestException as exc:
            raise self._error(ErrorClass.TRANSIENT, Code.NETWORK, exc) from exc
        except FCMError as exc:
            for exc_type, error_class, deactivate in PYFCM_EXCEPTIONS:
                if isinstance(exc, exc_type):
                    raise self._error(error_class, type(exc).__name__, exc, deactivate) from exc
            raise  # pragma: no cover - FCMError is the last row
        name = answer.get("name") if isinstance(answer, dict) else None
        if not name:
            raise ProviderError(
                ErrorClass.TRANSIENT, Code.NO_MESSAGE_NAME, "200 without a message name", provider=self.name
            )
        return SendResult(provider=self.name, provider_message_id=name, raw=answer)

    def _error(
        self, error_class: ErrorClass, code: str, exc: BaseException, deactivate: bool = False
    ) -> ProviderError:
        detail = str(exc.args[0] if exc.args else exc)[:300]
        return ProviderError(error_class, code, detail, provider=self.name, deactivate_address=deactivate)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> FCMProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# Push platform "fcm"; a dead token shows as ProviderError.deactivate_address at send time.
SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.PUSH, rank=30, platform=PROVIDER_NAME,
                    settings=FcmSettings.from_env, build=FCMProvider.from_settings)
