"""What a provider webhook answers for a signed event with a malformed field.

The signature is verified first, as always. An event that verifies but holds a value we
cannot read or store (a SendGrid `timestamp` of 1e300, a lone surrogate, a 300-character
MessageSid) is kept as a parked `rejected` receipt (sending.parked_receipts.park_rejected)
and answered with a JSON 4xx naming the field. In a SendGrid batch the other events are
recorded in the same transaction before the answer, so they are not lost whatever the
provider does with the 4xx.
"""

from __future__ import annotations

from providers.base import MalformedEvent

from ..errors import ApiError, ErrorCode

# The status for a refused event, by webhook source. Never 5xx: a 5xx (or 429, or a
# timeout) is what every one of these providers retries, and the event would fail the same
# way each time. What each does with a 4xx:
#  - Twilio: no retry. Connection overrides (#rc, #rp on the callback URL) can ask for retries
#    on 4xx too, at most 5 within the 15-second total timeout.
#  - SendGrid: retries any non-2xx at growing intervals for up to 24 hours after the event,
#    then drops it. A retried batch finds its good events already recorded (duplicates, no
#    effect) and its refused ones already kept (not kept twice): bounded and harmless.
#  - Amazon SNS (SES events): retries only 5xx, 429 and connection failures; any other 4xx
#    ends delivery at once (to the subscription's dead-letter queue, if it has one).
# 422: the body was read and verified; one of its fields cannot be taken.
REFUSED_EVENT_STATUS: dict[str, int] = {
    "twilio": 422,
    "sendgrid": 422,
    "ses": 422,
}
# A batch's answer lists at most this many refused events (the first one is its `field`).
MAX_DETAILS = 50


def refusal(source: str, errors: list[MalformedEvent]) -> ApiError:
    """The answer for a body with refused events (at least one)."""
    first = errors[0]
    details = [{"field": e.field, "code": e.fault.value, "message": e.reason} for e in errors[:MAX_DETAILS]]
    return ApiError(REFUSED_EVENT_STATUS[source], ErrorCode(first.fault.value), f"{first.field}: {first.reason}",
                    field=first.field, details=details if len(errors) > 1 else None)
