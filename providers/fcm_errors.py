"""How FCM HTTP v1 failures map onto our `ErrorClass`, as plain data.

An FCM v1 error body looks like::

    {"error": {"code": 404, "message": "...", "status": "NOT_FOUND",
               "details": [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                            "errorCode": "UNREGISTERED"}]}}

`errorCode` (FCM's own code, https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode)
is the most specific signal, then `status` (the google.rpc code), then the HTTP status. The
lookup walks those three tables in that order, so a 403 that carries SENDER_ID_MISMATCH is a
dead token, while a bare 403 PERMISSION_DENIED is our project's configuration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .base import ErrorClass, ProviderError
from .retry_after import parse_retry_after

PROVIDER_NAME = "fcm"

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
# The field FCM names in a BadRequest violation when the registration token itself is bad.
TOKEN_FIELD = "message.token"


@dataclass(frozen=True)
class FcmErrorHandling:
    """What we do with one FCM failure: its error class, and whether the token is dead."""

    error_class: ErrorClass
    deactivate_address: bool = False


TRANSIENT = FcmErrorHandling(ErrorClass.TRANSIENT)
PERMANENT = FcmErrorHandling(ErrorClass.PERMANENT)
DEAD_TOKEN = FcmErrorHandling(ErrorClass.PERMANENT, deactivate_address=True)
CONFIGURATION = FcmErrorHandling(ErrorClass.CONFIGURATION)

# FCM's own errorCode (details[].errorCode of type FcmError).
BY_FCM_ERROR_CODE: dict[str, FcmErrorHandling] = {
    "UNREGISTERED": DEAD_TOKEN,            # app uninstalled / token expired
    "SENDER_ID_MISMATCH": DEAD_TOKEN,      # token belongs to another sender: never ours to reach
    "INVALID_ARGUMENT": PERMANENT,         # bad payload; a bad *token* is upgraded below
    "QUOTA_EXCEEDED": TRANSIENT,
    "UNAVAILABLE": TRANSIENT,
    "INTERNAL": TRANSIENT,
    "THIRD_PARTY_AUTH_ERROR": CONFIGURATION,  # APNs certificate / web push key of the project
    "UNSPECIFIED_ERROR": TRANSIENT,
}

# google.rpc status (error.status) when no FcmError detail came with it.
BY_RPC_STATUS: dict[str, FcmErrorHandling] = {
    "NOT_FOUND": DEAD_TOKEN,
    "INVALID_ARGUMENT": PERMANENT,
    "UNAUTHENTICATED": CONFIGURATION,
    "PERMISSION_DENIED": CONFIGURATION,    # e.g. FCM API disabled, wrong project for the key
    "RESOURCE_EXHAUSTED": TRANSIENT,
    "UNAVAILABLE": TRANSIENT,
    "INTERNAL": TRANSIENT,
    "DEADLINE_EXCEEDED": TRANSIENT,
}

# HTTP status when the body says nothing usable (proxies, load balancers, HTML pages).
BY_HTTP_STATUS: dict[int, FcmErrorHandling] = {
    400: PERMANENT,
    401: CONFIGURATION,
    403: CONFIGURATION,
    404: DEAD_TOKEN,
    408: TRANSIENT,
    429: TRANSIENT,
    500: TRANSIENT,
    502: TRANSIENT,
    503: TRANSIENT,
    504: TRANSIENT,
}


def _fallback_for_status(http_status: int) -> FcmErrorHandling:
    if http_status in BY_HTTP_STATUS:
        return BY_HTTP_STATUS[http_status]
    return TRANSIENT if http_status >= 500 else PERMANENT


def _fcm_error_code(details: list[Any]) -> str | None:
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            return detail.get("errorCode")
    return None


def _names_bad_token(error: dict[str, Any]) -> bool:
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST_TYPE:
            for violation in detail.get("fieldViolations") or []:
                if violation.get("field") == TOKEN_FIELD:
                    return True
    # FCM's message text for a malformed token; kept as a second signal because the
    # BadRequest detail is not always present.
    return "registration token" in str(error.get("message", "")).lower()


def classify_response(
    http_status: int,
    body: Any,
    headers: Mapping[str, str] | None = None,
    *,
    max_retry_after: float | None = None,
) -> ProviderError:
    """Turn one non-200 FCM response into the `ProviderError` to raise."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    details = error.get("details") if isinstance(error.get("details"), list) else []
    fcm_code = _fcm_error_code(details)
    rpc_status = error.get("status")

    if fcm_code in BY_FCM_ERROR_CODE:
        code, handling = fcm_code, BY_FCM_ERROR_CODE[fcm_code]
    elif rpc_status in BY_RPC_STATUS:
        code, handling = rpc_status, BY_RPC_STATUS[rpc_status]
    else:
        code, handling = f"HTTP_{http_status}", _fallback_for_status(http_status)

    if code == "INVALID_ARGUMENT" and _names_bad_token(error):
        code, handling = "INVALID_REGISTRATION_TOKEN", DEAD_TOKEN

    retry_after = None
    detail = str(error.get("message", ""))[:300]
    if handling.error_class == ErrorClass.TRANSIENT:
        hint = parse_retry_after((headers or {}).get("Retry-After"))
        if hint is not None:
            detail = f"{detail} (Retry-After {hint:g}s)".strip()
            retry_after = hint if max_retry_after is None else min(hint, max_retry_after)
    return ProviderError(
        handling.error_class,
        code,
        detail,
        provider=PROVIDER_NAME,
        retry_after=retry_after,
        deactivate_address=handling.deactivate_address,
    )
