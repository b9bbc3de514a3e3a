"""SMS through Twilio's Programmable Messaging API, using the official `twilio` SDK (9.x).

Pointing the SDK elsewhere (tests, a regional proxy): every REST call of the `api` domain
is built as `client.api.base_url + "/2010-04-01/..."` at request time, so setting
`client.api.base_url` to TWILIO_API_BASE_URL redirects message sends without touching
the SDK. Edge/region are read from os.environ by the SDK unless given; we pass an explicit
environment so a stray TWILIO_REGION cannot rewrite that URL.

Errors: the SDK raises `TwilioRestException` (`.status`, `.code`) for HTTP errors, but lets
`requests` exceptions (connection refused/reset, timeouts) propagate raw; both are turned
into `ProviderError` here (see `twilio_errors` for the table).

Phone numbers and bodies are never logged in clear: logs carry our message id, Twilio's
SID and `mask_phone(...)`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.rest import Client

from .base import (
    AttemptStatus,
    Channel,
    Delivery,
    ErrorClass,
    ProviderError,
    Receipt,
    SearchIncomplete,
    SendResult,
)
from .masking import mask_phone
from .retry_after import parse_retry_after
from .sms_text import sms_text
from .spec import AddressReading, AddressSignal, ProviderSpec
from .twilio_errors import TwilioErrorRule, classify_delivery_error, classify_http_error, rule_for_code
from .twilio_http import PooledTwilioHttpClient
from .twilio_statuses import FAILURE_STATUSES, TwilioMessageStatus, map_status
from .twilio_webhooks import (
    PROVIDER_NAME,
    WEBHOOK_PUBLIC_URL_ENV,
    parse_status_callback,
    public_url_for,
    verify_twilio_signature,
)

__all__ = [
    "DEFAULT_API_BASE_URL",
    "ENV_ACCOUNT_SID",
    "ENV_API_BASE_URL",
    "ENV_AUTH_TOKEN",
    "ENV_FROM_NUMBER",
    "ENV_MESSAGING_SERVICE_SID",
    "ENV_STATUS_CALLBACK_URL",
    "MAX_VALIDITY_PERIOD_S",
    "WEBHOOK_PUBLIC_URL_ENV",
    "TwilioMessageStatus",
    "SPEC",
    "TwilioSMSProvider",
    "TwilioSettings",
    "address_signal",
    "error_for_receipt",
    "mask_phone",
    "parse_status_callback",
    "public_url_for",
    "verify_twilio_signature",
]

log = logging.getLogger(__name__)

ENV_ACCOUNT_SID = "TWILIO_ACCOUNT_SID"
ENV_AUTH_TOKEN = "TWILIO_AUTH_TOKEN"
ENV_FROM_NUMBER = "TWILIO_FROM_NUMBER"
ENV_MESSAGING_SERVICE_SID = "TWILIO_MESSAGING_SERVICE_SID"
ENV_API_BASE_URL = "TWILIO_API_BASE_URL"
ENV_STATUS_CALLBACK_URL = "TWILIO_STATUS_CALLBACK_URL"
DEFAULT_API_BASE_URL = "https://api.twilio.com"

# Twilio accepts ValidityPeriod of 1..36000 s (10 h, also its default).
MAX_VALIDITY_PERIOD_S = 36000

# Error codes of our own, for failures that carry no Twilio code.
CODE_CONNECTION = "connection_error"
CODE_TIMEOUT = "timeout"
CODE_BAD_RESPONSE = "bad_response"
CODE_EXPIRED = "expired_before_send"



def _text(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip() or None


@dataclass(frozen=True)
class TwilioSettings:
    """Twilio's variables, checked: SID and token together, and a sender."""

    account_sid: str
    auth_token: str                       # also signs the webhooks (X-Twilio-Signature)
    from_number: str | None = None
    messaging_service_sid: str | None = None
    api_base_url: str | None = None
    status_callback_url: str | None = None
    webhook_public_url: str | None = None  # the URL Twilio signs, when a proxy rewrites ours

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioSettings | None:
        """None when the account SID and auth token are both absent (sandbox SMS). SID and
        token present but no sender is a configuration mistake and raises ValueError."""
        sid, token = _text(env, ENV_ACCOUNT_SID), _text(env, ENV_AUTH_TOKEN)
        if not sid and not token:
            return None
        if not sid or not token:
            have, lack = (ENV_ACCOUNT_SID, ENV_AUTH_TOKEN) if sid else (ENV_AUTH_TOKEN, ENV_ACCOUNT_SID)
            raise ValueError(f"{have} is set but {lack} is not: set both for live SMS, or neither for sandbox")
        if not _text(env, ENV_FROM_NUMBER) and not _text(env, ENV_MESSAGING_SERVICE_SID):
            raise ValueError(f"{ENV_ACCOUNT_SID} and {ENV_AUTH_TOKEN} are set but neither {ENV_FROM_NUMBER} nor "
                             f"{ENV_MESSAGING_SERVICE_SID}: set one of them to send from")
        return cls(sid, token, from_number=_text(env, ENV_FROM_NUMBER),
                   messaging_service_sid=_text(env, ENV_MESSAGING_SERVICE_SID),
                   api_base_url=_text(env, ENV_API_BASE_URL), status_callback_url=_text(env, ENV_STATUS_CALLBACK_URL),
                   webhook_public_url=_text(env, WEBHOOK_PUBLIC_URL_ENV))

    def __repr__(self) -> str:  # never show the token
        return f"TwilioSettings(account_sid={self.account_sid!r})"


class TwilioSMSProvider:
    name = PROVIDER_NAME
    # Where this service receives Twilio's status callbacks (orchestrator/api/webhooks.py).
    status_callback_path = "/webhooks/twilio"
    channel = Channel.SMS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        status_callback_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("Twilio account SID and auth token are required")
        if not from_number and not messaging_service_sid:
            raise ValueError(f"Twilio needs {ENV_FROM_NUMBER} or {ENV_MESSAGING_SERVICE_SID} to send from")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.account_sid = account_sid
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.base_url = (base_url or DEFAULT_API_BASE_URL).rstrip("/")
        self.status_callback_url = status_callback_url
        self.timeout = timeout
        # Kept for webhook verification; Twilio signs callbacks with the same token.
        self._auth_token = auth_token
        # timeout applies to connect and to each read, so a hung Twilio costs at most ~2x.
        # A light urllib3 client instead of the SDK's requests-based one (twilio_http.py).
        self._http = PooledTwilioHttpClient(self.base_url, timeout)
        self._client = Client(
            account_sid,
            auth_token,
            http_client=self._http,
            # Non-empty on purpose: the SDK falls back to os.environ for an empty mapping.
            environment={ENV_ACCOUNT_SID: account_sid},
        )
        self._client.api.base_url = self.base_url

    @classmethod
    def from_settings(cls, settings: TwilioSettings) -> TwilioSMSProvider:
        return cls(settings.account_sid, settings.auth_token, from_number=settings.from_number,
                   messaging_service_sid=settings.messaging_service_sid, base_url=settings.api_base_url,
                   status_callback_url=settings.status_callback_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioSMSProvider | None:
        """A provider from environment-style settings, or None when Twilio is not configured
        (TwilioSettings.from_env: the orchestrator then runs SMS in sandbox mode)."""
        settings = TwilioSettings.from_env(env)
        return cls.from_settings(settings) if settings is not None else None

    def __repr__(self) -> str:  # never show the token
        return f"TwilioSMSProvider(account_sid={self.account_sid!r}, base_url={self.base_url!r})"

    # --- sending -------------------------------------------------------------------------

    def send(self, delivery: Delivery) -> SendResult:
        params = self.message_params(delivery)
        masked = mask_phone(delivery.to)
        try:
            message = self._client.messages.create(**params)
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._rest_error(exc, delivery, masked) from exc
        except requests.ConnectTimeout as exc:
            # Never reached Twilio: nothing was sent, retrying is safe.
            log.warning("twilio connect timeout message=%s to=%s", delivery.message_id, masked)
            raise ProviderError(
                ErrorClass.TRANSIENT, CODE_CONNECTION, type(exc).__name__, provider=self.name
            ) from exc
        except requests.Timeout as exc:
            # Read timeout. Ambiguous: Twilio may have accepted the message before the read
            # timed out, and its Messages API has no idempotency key, so a retry can
            # double-send. Still TRANSIENT per the design; the distinct code lets the
            # orchestrator tell the two apart.
            log.warning("twilio timeout message=%s to=%s", delivery.message_id, masked)
            raise ProviderError(
                ErrorClass.TRANSIENT, CODE_TIMEOUT, type(exc).__name__, provider=self.name
            ) from exc
        except requests.RequestException as exc:
            # Connection refused/reset, DNS, TLS: the SDK does not wrap these.
            log.warning("twilio connection error message=%s to=%s: %s",
                        delivery.message_id, masked, type(exc).__name__)
            raise ProviderError(
                ErrorClass.TRANSIENT, CODE_CONNECTION, type(exc).__name__, provider=self.name
            ) from exc
        except json.JSONDecodeError as exc:
            # A 2xx whose body is not JSON (a proxy page?): unknown whether it was sent.
            raise ProviderError(
                ErrorClass.TRANSIENT, CODE_BAD_RESPONSE, "unparseable 2xx body", provider=self.name
            ) from exc

        if not message.sid:
            # 2xx without a message SID: nothing to track receipts by.
            raise ProviderError(
                ErrorClass.TRANSIENT, CODE_BAD_RESPONSE, "2xx without a message sid", provider=self.name
            )
        raw = {field: getattr(message, field, None) for field in _RESULT_FIELDS}
        status, _ = map_status(message.status)
        if message.status in FAILURE_STATUSES:
            # Rare, but Twilio can answer 201 with a message that already failed.
            rule = classify_delivery_error(message.error_code)
            raise ProviderError(
                rule.error_class,
                str(message.error_code or message.status),
                rule.meaning,
                provider=self.name,
                deactivate_address=rule.deactivate_address,
            )
        log.info("twilio sent message=%s sid=%s to=%s status=%s",
                 delivery.message_id, message.sid, masked, message.status)
        return SendResult(
            provider=self.name,
            provider_message_id=message.sid,
            # An unrecognised success status still means Twilio holds the message.
            status=status or AttemptStatus.QUEUED,
            raw=raw,
        )

    def message_params(self, delivery: Delivery) -> dict[str, Any]:
        """The Messages API parameters of one send: what differs between Twilio's channels
        (SMS here; a subclass for another sender), while sending and error handling stay one."""
        if delivery.channel != self.channel:
            raise ValueError(f"{type(self).__name__} sends {self.channel}, not {delivery.channel}")
        params: dict[str, Any] = {
            "to": delivery.to,
            "body": sms_text(delivery.title, delivery.body),  # what the segment facts counted
            "status_callback": delivery.status_callback_url or self.status_callback_url,
        }
        if self.from_number:
            params["from_"] = self.from_number
        if self.messaging_service_sid:
            params["messaging_service_sid"] = self.messaging_service_sid
        validity = self._validity_period(delivery)
        if validity is not None:
            params["validity_period"] = validity
        return params

    def _page_error(self, exc: Exception) -> ProviderError:
        response = exc.args[1] if len(exc.args) > 1 else None
        status = int(getattr(response, "status_code", 0) or 0)
        code = None
        try:
            code = json.loads(getattr(response, "text", "") or "{}").get("code")
        except (ValueError, AttributeError):
            pass
        if not status:
            return ProviderError(ErrorClass.TRANSIENT, CODE_BAD_RESPONSE, "listing failed", provider=self.name)
        rule = classify_http_error(status, code)
        return ProviderError(rule.error_class, str(code if code is not None else status),
                             f"HTTP {status}: {rule.meaning}", provider=self.name)

    def _validity_period(self, delivery: Delivery) -> int | None:
        """Seconds Twilio may keep the message queued: until the message expires, so an OTP
        does not arrive after it stopped being useful."""
        if delivery.expires_at is None:
            return None
        expires = delivery.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        remaining = int((expires - datetime.now(UTC)).total_seconds())
        if remaining < 1:
            raise ProviderError(
                ErrorClass.PERMANENT, CODE_EXPIRED, "message expired before sending", provider=self.name
            )
        return min(remaining, MAX_VALIDITY_PERIOD_S)

    def _rest_error(
        self, exc: TwilioRestException | TwilioServiceException, delivery: Delivery, masked: str
    ) -> ProviderError:
        status = int(exc.status or 0)
        # For non-JSON error bodies the SDK puts the HTTP status in .code; that is no
        # Twilio code, so the HTTP status rules apply (rule_for_code finds nothing).
        code = exc.code
        rule: TwilioErrorRule = classify_http_error(status, code)
        if rule_for_code(code) is None:
            log.warning("twilio unlisted error http=%s code=%s message=%s to=%s -> %s",
                        status, code, delivery.message_id, masked, rule.error_class)
        else:
            log.info("twilio refused http=%s code=%s message=%s to=%s -> %s",
                     status, code, delivery.message_id, masked, rule.error_class)
        retry_after = None
        if rule.error_class == ErrorClass.TRANSIENT:
            retry_after = parse_retry_after(self._http.last_header("Retry-After"))
        return ProviderError(
            rule.error_class,
            str(code if code is not None else status),
            f"HTTP {status}: {rule.meaning}",
            provider=self.name,
            retry_after=retry_after,
            deactivate_address=rule.deactivate_address,
        )

    # --- reconciling an uncertain send -----------------------------------------------------

    # How far before the recorded start a message Twilio holds may be dated: Twilio's clock
    # against ours, and date_created has whole seconds.
    FIND_SKEW_SECONDS = 60
    FIND_PAGE_SIZE = 1000  # Twilio's maximum: one request covers a busy number's usual window
    # A safety bound: past this many pages (10,000 messages to one number since the send
    # started) the search stops and says it cannot tell, rather than reading on for minutes.
    FIND_MAX_PAGES = 10

    def find_sent(self, delivery: Delivery, since: datetime) -> list[SendResult]:
        """Messages Twilio holds that this delivery may have created: same To, same From (when
        we send from a number), same body, created at or after `since` (less a clock skew);
        newest first. The caller drops SIDs it already knows from other sends.

        Reads the List Messages resource (GET …/Messages.json?To=&From=&PageSize=1000) page by
        page, following next_page_uri, until it has passed the window's start: however busy
        the number, every message since the send started is read, and no more pages than that.
        Raises SearchIncomplete (with the matches read so far) when FIND_MAX_PAGES are read and
        the window is still not covered. Not DateSent>=: `date_sent` is empty until Twilio has
        handed the message to the carrier, so a message still queued there would be missed;
        creation times are compared."""
        body = sms_text(delivery.title, delivery.body)
        params: dict[str, Any] = {"to": delivery.to, "page_size": self.FIND_PAGE_SIZE}
        if self.from_number:
            params["from_"] = self.from_number
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        earliest = since.timestamp() - self.FIND_SKEW_SECONDS
        results: list[SendResult] = []
        pages = read = 0
        try:
            page = self._client.messages.page(**params)
            while True:
                pages += 1
                past_window = False
                for message in page:  # the whole page: it is read already, and order within a second is loose
                    read += 1
                    created = message.date_created
                    if _listed_after_window(message, earliest):
                        past_window = True
                    if (message.body != body or (message.direction or "").startswith("inbound")
                            or created is None or created.timestamp() < earliest):
                        continue
                    status, _ = map_status(message.status)
                    results.append(SendResult(
                        provider=self.name, provider_message_id=message.sid, status=status or AttemptStatus.QUEUED,
                        raw={field: getattr(message, field, None) for field in _RESULT_FIELDS}))
                if past_window or not page.next_page_url:
                    break
                if pages >= self.FIND_MAX_PAGES:
                    log.warning("twilio find_sent message=%s to=%s: %d messages in %d pages and the window "
                                "is not covered", delivery.message_id, mask_phone(delivery.to), read, pages)
                    raise SearchIncomplete(f"{read} messages read in {pages} pages without reaching the window's "
                                           f"start", results, provider=self.name)
                page = page.next_page()
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._rest_error(exc, delivery, mask_phone(delivery.to)) from exc
        except TwilioException as exc:
            # The SDK's paging says "Unable to fetch page" for any non-200, with the response.
            raise self._page_error(exc) from exc
        except (requests.RequestException, json.JSONDecodeError) as exc:
            raise ProviderError(ErrorClass.TRANSIENT, CODE_CONNECTION, type(exc).__name__,
                                provider=self.name) from exc
        log.info("twilio find_sent message=%s to=%s pages=%d read=%d matches=%d", delivery.message_id,
                 mask_phone(delivery.to), pages, read, len(results))
        return results

    # --- receipts ------------------------------------------------------------------------

    parse_status_callback = staticmethod(parse_status_callback)

    def verify_signature(
        self, url: str, params: Mapping[str, Any] | None, signature_header: str | None,
        *, body: str | bytes | None = None,
    ) -> None:
        """`verify_twilio_signature` with this account's auth token."""
        verify_twilio_signature(self._auth_token, url, params, signature_header, body=body)


def _listed_after_window(message, earliest: float) -> bool:
    """True for a message that Twilio lists after every message of the window: created before
    its start and sent before it too. Twilio lists newest first — by creation as observed, by
    DateSent as its reference says — so under either order nothing after such a message is in
    the window. A message not yet sent (no date_sent: still queued, maybe for long on a busy
    number) never ends the search: under DateSent its place says nothing about the rest."""
    created, sent = message.date_created, message.date_sent
    return created is not None and sent is not None and max(created, sent).timestamp() < earliest


def error_for_receipt(receipt: Receipt) -> ProviderError | None:
    """The classified error behind an undelivered/failed Twilio receipt, or None for any
    other receipt. Lets the orchestrator treat a late carrier failure (30003-30008) like a
    refused send: fall back, and deactivate the number when the code says it is dead."""
    if receipt.status not in _FAILED_ATTEMPT_STATUSES:
        return None
    rule = classify_delivery_error(receipt.error_code)
    return ProviderError(
        rule.error_class,
        receipt.error_code or str(receipt.status),
        rule.meaning,
        provider=PROVIDER_NAME,
        deactivate_address=rule.deactivate_address,
    )


_FAILED_ATTEMPT_STATUSES = frozenset({AttemptStatus.UNDELIVERED, AttemptStatus.FAILED})

# What SendResult.raw keeps of Twilio's reply: ids, status, cost and size. `to` and `body`
# are left out on purpose, since the orchestrator stores raw as-is.
_RESULT_FIELDS = (
    "sid",
    "status",
    "account_sid",
    "messaging_service_sid",
    "num_segments",
    "num_media",
    "error_code",
    "error_message",
    "price",
    "price_unit",
    "direction",
    "api_version",
)


def address_signal(code: str, status: AttemptStatus | str | None) -> AddressReading | None:
    """What a Twilio error code (of a refused send, or of an undelivered/failed status
    callback) says about the recipient: opted out (STOP) or a number that can never receive."""
    if status not in (AttemptStatus.UNDELIVERED, AttemptStatus.FAILED) or not code:
        return None
    rule = rule_for_code(code)
    if rule is None:
        return None
    if rule.opt_out:
        return AddressReading(AddressSignal.OPT_OUT, f"sms opt-out ({code})")
    if rule.deactivate_address:
        return AddressReading(AddressSignal.DEAD, f"twilio {code}: {rule.meaning}")
    return None


SPEC = ProviderSpec(name=PROVIDER_NAME, channel=Channel.SMS, rank=10, settings=TwilioSettings.from_env,
                    build=TwilioSMSProvider.from_settings, backup_prefix="TWILIO", signals=address_signal)
