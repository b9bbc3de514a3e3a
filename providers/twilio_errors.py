"""How Twilio's errors map onto our `ErrorClass`.

Two sources carry Twilio error codes: the REST API's error body when a send is refused
(`{"code": 21211, "status": 400, ...}`), and the `ErrorCode` field of a status callback when
a message that was accepted later fails at the carrier (30003-30008 and friends). Both are
classified by the one table below, so a code means the same thing wherever it shows up.

Order of precedence when classifying an HTTP error:
1. a Twilio code listed in `TWILIO_ERROR_CODES`;
2. otherwise the HTTP status (`HTTP_STATUS_CLASSES`): 401/403 configuration, 408/429/5xx
   transient;
3. otherwise any other 4xx is PERMANENT: Twilio looked at this request and refused it, so
   sending the same request again would only be refused again. Retrying an unknown 4xx
   risks a retry storm for nothing; moving to the next step is the safe default.
   Unknown codes are logged by the provider so the table can grow.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ErrorClass


@dataclass(frozen=True)
class TwilioErrorRule:
    error_class: ErrorClass
    deactivate_address: bool
    meaning: str
    # The person, not the number: they replied STOP. A consent signal (the orchestrator
    # withdraws SMS consent), not a dead address, though Twilio refuses every send to it.
    opt_out: bool = False


P, T, C = ErrorClass.PERMANENT, ErrorClass.TRANSIENT, ErrorClass.CONFIGURATION

# Twilio error code -> rule. Meanings are Twilio's, shortened (https://www.twilio.com/docs/api/errors).
# `deactivate_address` is True only when the phone number itself can never receive our SMS
# (invalid, not mobile, unsubscribed): the orchestrator then stops choosing that address.
TWILIO_ERROR_CODES: dict[int, TwilioErrorRule] = {
    # --- account / credentials: nothing the recipient did; fail the provider and alert.
    20003: TwilioErrorRule(C, False, "authentication failed"),
    20404: TwilioErrorRule(C, False, "resource not found (wrong account SID or API base URL?)"),
    21212: TwilioErrorRule(C, False, "invalid From number"),
    21408: TwilioErrorRule(C, False, "permission to send to this region not enabled"),
    21606: TwilioErrorRule(C, False, "From number is not a valid SMS-capable number of this account"),
    21608: TwilioErrorRule(C, False, "trial account: To number is not verified"),
    30002: TwilioErrorRule(C, False, "account suspended"),
    30032: TwilioErrorRule(C, False, "toll-free sender not verified"),
    30034: TwilioErrorRule(C, False, "sender not registered (US A2P 10DLC)"),
    # --- throttling: back off and retry.
    20429: TwilioErrorRule(T, False, "too many requests"),
    21611: TwilioErrorRule(T, False, "From number has too many queued messages"),
    30001: TwilioErrorRule(T, False, "queue overflow"),
    # Twilio's own advice for 30008 is that a retry may succeed.
    30008: TwilioErrorRule(T, False, "unknown delivery error"),
    # --- the address is dead: stop using it.
    21211: TwilioErrorRule(P, True, "invalid To number"),
    21610: TwilioErrorRule(P, True, "recipient unsubscribed (replied STOP)", opt_out=True),
    21614: TwilioErrorRule(P, True, "To is not a mobile number"),
    30005: TwilioErrorRule(P, True, "unknown destination handset (number not in service)"),
    30006: TwilioErrorRule(P, True, "landline or unreachable carrier"),
    # --- this message cannot go by SMS now, but the number may work another time.
    21602: TwilioErrorRule(P, False, "message body is required"),
    21612: TwilioErrorRule(P, False, "To cannot be routed from this sender"),
    21617: TwilioErrorRule(P, False, "message body too long (over 1600 characters)"),
    # Handset off or out of coverage: the carrier has already retried for the validity
    # period, so fall back to the next channel rather than retry SMS; the number is fine.
    30003: TwilioErrorRule(P, False, "unreachable destination handset"),
    # Blocked covers carrier blocks as well as the recipient blocking us: not proof the
    # number is dead, so the address is kept.
    30004: TwilioErrorRule(P, False, "message blocked"),
    # Carrier spam filter judged the content/sender: not about the address.
    30007: TwilioErrorRule(P, False, "filtered by carrier"),
}

del P, T, C

# HTTP status -> rule, used only when the body carries no code listed above.
HTTP_STATUS_CLASSES: dict[int, TwilioErrorRule] = {
    401: TwilioErrorRule(ErrorClass.CONFIGURATION, False, "unauthorized"),
    403: TwilioErrorRule(ErrorClass.CONFIGURATION, False, "forbidden"),
    408: TwilioErrorRule(ErrorClass.TRANSIENT, False, "request timeout"),
    429: TwilioErrorRule(ErrorClass.TRANSIENT, False, "too many requests"),
}
SERVER_ERROR_RULE = TwilioErrorRule(ErrorClass.TRANSIENT, False, "Twilio server error")
UNKNOWN_CLIENT_ERROR_RULE = TwilioErrorRule(ErrorClass.PERMANENT, False, "request refused (unknown code)")
UNKNOWN_ERROR_CODE_RULE = TwilioErrorRule(ErrorClass.PERMANENT, False, "unknown error code")


def rule_for_code(code: int | str | None) -> TwilioErrorRule | None:
    """The table's rule for a Twilio error code, or None when the code is absent or unlisted."""
    if code is None or code == "":
        return None
    try:
        return TWILIO_ERROR_CODES.get(int(code))
    except (TypeError, ValueError):
        return None


def classify_http_error(status: int, code: int | str | None) -> TwilioErrorRule:
    """Classify a refused REST call. See the module docstring for the precedence."""
    rule = rule_for_code(code)
    if rule is not None:
        return rule
    if status in HTTP_STATUS_CLASSES:
        return HTTP_STATUS_CLASSES[status]
    if status >= 500:
        return SERVER_ERROR_RULE
    return UNKNOWN_CLIENT_ERROR_RULE


def classify_delivery_error(code: int | str | None) -> TwilioErrorRule:
    """Classify the `ErrorCode` of an undelivered/failed status callback. An unlisted code is
    PERMANENT for the attempt (the message did not arrive; fall back now) but never
    deactivates the address."""
    return rule_for_code(code) or UNKNOWN_ERROR_CODE_RULE
