"""How APNs failure reasons map onto our `ErrorClass`, as plain data.

APNs answers a failed push with an HTTP status and `{"reason": "..."}` (410 adds
`"timestamp"`, when the token stopped being valid). The reason is the specific signal; the
status is the fallback for reasons this table does not know yet. Reference: Apple's
"Handling notification responses from APNs".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .base import ErrorClass


@dataclass(frozen=True)
class ApnsErrorHandling:
    """What we do with one APNs failure: its error class, and whether the token is dead or the JWT re-signed."""

    error_class: ErrorClass
    deactivate_address: bool = False
    # ExpiredProviderToken: our JWT is older than an hour (or our clock is off); sign a new
    # one and retry once before calling it configuration.
    resign: bool = False


TRANSIENT = ApnsErrorHandling(ErrorClass.TRANSIENT)
PERMANENT = ApnsErrorHandling(ErrorClass.PERMANENT)
DEAD_TOKEN = ApnsErrorHandling(ErrorClass.PERMANENT, deactivate_address=True)
CONFIGURATION = ApnsErrorHandling(ErrorClass.CONFIGURATION)
EXPIRED_JWT = ApnsErrorHandling(ErrorClass.CONFIGURATION, resign=True)


class Reason(StrEnum):
    """The reason strings we branch on by name."""

    EXPIRED_PROVIDER_TOKEN = "ExpiredProviderToken"
    PAYLOAD_TOO_LARGE = "PayloadTooLarge"


REASONS: dict[str, ApnsErrorHandling] = {
    # The device token is dead or not ours: stop choosing it. (BadDeviceToken is also what a
    # sandbox token sent to production gets; that too means "never deliverable here".)
    "BadDeviceToken": DEAD_TOKEN,
    "DeviceTokenNotForTopic": DEAD_TOKEN,
    "MissingDeviceToken": DEAD_TOKEN,
    "Unregistered": DEAD_TOKEN,                 # 410
    "ExpiredToken": DEAD_TOKEN,                 # 410
    # Apple is busy or we are sending too fast: retry with backoff.
    "TooManyRequests": TRANSIENT,               # 429, too many pushes to one device
    "TooManyProviderTokenUpdates": TRANSIENT,   # 429, JWT re-signed too often; it passes
    "InternalServerError": TRANSIENT,           # 500
    "ServiceUnavailable": TRANSIENT,            # 503
    "Shutdown": TRANSIENT,                      # 503, server draining: reconnect
    "IdleTimeout": TRANSIENT,                   # 400, connection idled out: reconnect
    # Our credentials or app identity are wrong: fail over, alert.
    "InvalidProviderToken": CONFIGURATION,
    "MissingProviderToken": CONFIGURATION,
    "BadCertificate": CONFIGURATION,
    "BadCertificateEnvironment": CONFIGURATION,
    "Forbidden": CONFIGURATION,
    "UnrelatedKeyIdInToken": CONFIGURATION,
    "BadEnvironmentKeyInToken": CONFIGURATION,
    "BadTopic": CONFIGURATION,
    "TopicDisallowed": CONFIGURATION,
    "MissingTopic": CONFIGURATION,
    Reason.EXPIRED_PROVIDER_TOKEN: EXPIRED_JWT,
    # This message is wrong (not the address): it will never go through as it is.
    Reason.PAYLOAD_TOO_LARGE: PERMANENT,        # 413
    "BadExpirationDate": PERMANENT,
    "BadCollapseId": PERMANENT,
    "BadMessageId": PERMANENT,
    "BadPriority": PERMANENT,
    "DuplicateHeaders": PERMANENT,
    "InvalidPushType": PERMANENT,
    "PayloadEmpty": PERMANENT,
    "BadPath": PERMANENT,                       # 404
    "MethodNotAllowed": PERMANENT,              # 405
}

BY_HTTP_STATUS: dict[int, ApnsErrorHandling] = {
    400: PERMANENT,
    403: CONFIGURATION,
    404: PERMANENT,
    405: PERMANENT,
    410: DEAD_TOKEN,
    413: PERMANENT,
    429: TRANSIENT,
    500: TRANSIENT,
    503: TRANSIENT,
}


def handling_for(http_status: int, reason: str | None) -> ApnsErrorHandling:
    if reason in REASONS:
        return REASONS[reason]
    if http_status in BY_HTTP_STATUS:
        return BY_HTTP_STATUS[http_status]
    return TRANSIENT if http_status >= 500 else PERMANENT
