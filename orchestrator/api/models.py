"""Shapes of what the API answers (and of the small bodies and query strings the handlers
check by hand), as pydantic models, so /openapi.json shows the real contract. Requests the
handlers parse with `parse_body` use the models in orchestrator/schemas.py.

Response models list the fields clients rely on; they do not forbid extra fields, so adding
a field to a response is never a breaking change. Every `examples` entry here is validated
against its model by tests/api/test_openapi.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, RootModel, create_model

from ..recipients.erasure import ErasureResult
from ..schemas import MessageAccepted, Route, RouteStep  # noqa: F401  (re-exported for declarations)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


# -- small request bodies and query strings ---------------------------------------------------
class ReasonIn(BaseModel):
    model_config = _examples({"reason": "reviewed with legal on 2026-03-01"})
    reason: str = Field(default="", max_length=2000)


class RequiredReasonIn(BaseModel):
    model_config = _examples({"reason": "key leaked in a CI log"})
    reason: str = Field(min_length=1, max_length=2000)


class PolicyDocumentIn(BaseModel):
    model_config = _examples({"document": "version: '2026-03'\ncategories: {}\nrules: []\n",
                              "reason": "new OTP rule"})
    document: str = Field(description="the policy YAML")
    reason: str = Field(default="", max_length=2000)


class SimulateIn(BaseModel):
    model_config = _examples({"days": 7})
    days: int = Field(default=7, ge=1, le=366)
    document: str | None = Field(default=None, description="policy YAML (POST /v1/policies/simulate only)")


_LOCALE_FIELD = Field(default=None, max_length=35, description="a language tag (en, ko, pt-BR) for the labels; "
                                                             "default: Accept-Language, then en")


class InboxQuery(BaseModel):
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200, description="next_cursor of the previous page")
    locale: str | None = _LOCALE_FIELD


class LocaleQuery(BaseModel):
    locale: str | None = _LOCALE_FIELD


class AuditQuery(BaseModel):
    limit: int = Field(default=100, ge=1, le=1000)
    subject: str | None = None
    action: str | None = None


class DecisionsQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: datetime | None = Field(default=None, alias="from", description="ISO 8601, default: 7 days before `to`")
    to: datetime | None = Field(default=None, description="ISO 8601, default: now")


# -- messages ---------------------------------------------------------------------------------
class Attempt(BaseModel):
    id: str
    step: int
    channel: str
    mode: str
    provider: str | None = None
    to: str | None = Field(default=None, description="the address, masked")
    status: str
    sandboxed: bool
    quiet: bool = Field(default=False, description="in-app: an inbox entry without live display")
    due_at: datetime | None = None
    tries: int
    error: dict[str, Any] | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None


class ReceiptEventOut(BaseModel):
    id: int
    attempt_id: str | None = None
    source: str
    status: str | None = None
    engagement: str | None = None
    outcome: str
    occurred_at: datetime | None = None
    received_at: datetime | None = None


class Decision(BaseModel):
    decided_at: datetime | None = None
    policy_version: str
    derived_facts: dict[str, Any]


class MessageOut(BaseModel):
    model_config = _examples({
        "id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A6", "status": "delivered", "user_id": "u-1",
        "category": "security_alert", "urgency": "critical", "expires_at": None, "metadata": {},
        "created_at": "2026-03-01T09:00:00+00:00", "updated_at": "2026-03-01T09:00:02+00:00",
        "route": {"policy_version": "2026-03", "steps": [{"channel": "sms", "mode": "first"}], "excluded": []},
        "decision": {"decided_at": "2026-03-01T09:00:00+00:00", "policy_version": "2026-03",
                     "derived_facts": {"presence": "offline"}},
        "attempts": [], "receipts": []})
    id: str
    status: str
    user_id: str
    category: str
    urgency: str
    expires_at: datetime | None = None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    erased_at: datetime | None = Field(default=None, description="set once the recipient was erased")
    send_at: datetime | None = Field(default=None, description="a scheduled message: when it is decided and sent")
    cancelled: dict[str, Any] | None = Field(default=None, description="{at, by: {key_id, key_name}} once cancelled")
    route: dict[str, Any] | None = Field(description="null while the message is scheduled")
    decision: Decision | None = Field(description="null while the message is scheduled")
    attempts: list[Attempt]
    receipts: list[ReceiptEventOut]


class MessageSummary(BaseModel):
    id: str
    status: str
    user_id: str
    category: str
    urgency: str
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None = None
    expires_at: datetime | None = None
    policy_version: str | None = None
    cancelled: dict[str, Any] | None = None
    metadata: dict[str, Any]


class MessageList(BaseModel):
    model_config = _examples({"messages": [], "next_cursor": None})
    messages: list[MessageSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class MessageListQuery(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    status: str | None = Field(default=None, description="comma-separated message statuses, e.g. scheduled,accepted")
    category: str | None = None
    channel: str | None = Field(default=None, description="only those sent on this channel: in_app, push, sms, email")
    user_id: str | None = None
    from_: datetime | None = Field(default=None, alias="from", description="created at or after (ISO 8601)")
    to: datetime | None = Field(default=None, description="created before (ISO 8601)")
    idempotency_key: str | None = None
    limit: int | None = Field(default=None, ge=1, description="page size (default and maximum per list)")
    cursor: str | None = Field(default=None, description="next_cursor of the previous page, unchanged")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "the order was refunded"}]})
    reason: str = Field(default="", max_length=2000)


class CancelOut(BaseModel):
    id: str
    status: str
    previous_status: str
    cancelled_attempts: list[str]
    cancelled: dict[str, Any] = Field(description="{at, by: {key_id, key_name}}")


class BatchItem(BaseModel):
    recipient: dict[str, Any] = Field(description="as `recipient` of a single send")
    variables: dict[str, Any] | None = Field(default=None, description="into `template.variables` (with a template)")
    metadata: dict[str, Any] | None = Field(default=None, description="merged over the shared metadata")


class BatchIn(BaseModel):
    """Shared fields as in a single send; each item names its recipient (and variables)."""

    model_config = _examples({
        "category": "security_alert", "urgency": "critical",
        "content": {"title": "New sign-in", "body": "A new device signed in to your account."},
        "recipients": [{"recipient": {"user_id": "u-1"}}, {"recipient": {"user_id": "u-2"}}]})
    category: str
    urgency: str | None = None
    content: dict[str, Any] | None = None
    template: dict[str, Any] | None = Field(default=None, description="{id, version?}; item variables go in")
    expires_at: datetime | None = None
    send_at: datetime | None = None
    metadata: dict[str, Any] | None = None
    recipients: list[BatchItem] = Field(min_length=1, max_length=1000)


class BatchOut(BaseModel):
    model_config = _examples({"accepted": 1, "refused": 1, "results": [
        {"index": 0, "id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A6", "status": "accepted"},
        {"index": 1, "error": {"code": "invalid_phone", "field": "recipients[1].recipient.phone",
                               "message": "recipients[1].recipient.phone: not a valid number"}}]})
    accepted: int
    refused: int
    results: list[dict[str, Any]] = Field(description="per item: {index, id, status} or {index, error}")


class ExplainOut(BaseModel):
    policy_version: str
    steps: list[dict[str, Any]]
    excluded: list[dict[str, Any]]
    suppressed: bool
    trace: list[dict[str, Any]]
    facts: dict[str, Any]
    inputs: dict[str, Any] = Field(description="the message and recipient facts used (addresses masked)")


class MessageExplanation(BaseModel):
    message_id: str
    category: str
    created_at: datetime
    decided_at: datetime | None = None
    policy_version: str
    facts: dict[str, Any] | None = None
    stored: dict[str, Any]
    replayed: dict[str, Any] | None = None
    matches: bool
    differences: list[str]
    error: str | None = None


# -- recipients -------------------------------------------------------------------------------
class DeviceOut(BaseModel):
    platform: str
    token: str = Field(description="shortened")
    active: bool


class RecipientOut(BaseModel):
    model_config = _examples({
        "user_id": "u-1", "email": "a***@example.com", "email_valid": True, "phone": "+44*******456",
        "phone_valid": True, "timezone": "Europe/London", "locale": "en-GB", "consents": {"sms": True},
        "quiet_hours": None, "devices": [], "last_active_at": None, "last_heartbeat_at": None})
    user_id: str
    email: str | None = Field(default=None, description="masked")
    email_valid: bool
    phone: str | None = Field(default=None, description="masked")
    phone_valid: bool
    timezone: str
    locale: str | None = None
    consents: dict[str, Any]
    quiet_hours: list[str] | None = None
    devices: list[DeviceOut]
    last_active_at: datetime | None = None
    last_heartbeat_at: datetime | None = None


# The fields are the service's result's (recipients/erasure.py ErasureResult), listed once there.
ErasureOut = create_model(
    "ErasureOut", __module__=__name__,
    __config__=_examples({"user_id": "u-1", "erased": True, "profile_deleted": True, "devices_deleted": 2,
                          "inapp_tokens_deleted": 1, "messages_redacted": 14, "attempts_cancelled": 0,
                          "audit_entry_id": 42}),
    **{name: (hint, ...) for name, hint in get_type_hints(ErasureResult).items()})


class PresenceOut(BaseModel):
    user_id: str
    last_heartbeat_at: datetime
    store: str


class InAppTokenOut(BaseModel):
    token: str
    token_id: str
    expires_at: datetime


class TokenRevokedOut(BaseModel):
    token_id: str
    revoked: bool


class UserTokensRevokedOut(BaseModel):
    user_id: str
    revoked: int


# -- in-app client ----------------------------------------------------------------------------
class InboxItem(BaseModel):
    id: str
    message_id: str
    category: str
    category_label: str = Field(description="the category's human label in the client's locale")
    title: str
    body: str
    action_url: str | None = None
    image_url: str | None = None
    created_at: datetime
    seen_at: datetime | None = None
    read_at: datetime | None = None
    clicked_at: datetime | None = None
    acknowledged_at: datetime | None = None
    archived_at: datetime | None = None
    requires_acknowledgement: bool = False  # a legal notice: "read all" leaves it; acknowledge it


class ClientManifest(BaseModel):
    model_config = _examples({
        "name": "orchestrator-inbox", "url": "/client/orchestrator-inbox.3f2a9c0d1b7e.js",
        "unversioned_url": "/client/orchestrator-inbox.js",
        "sha256": "3f2a9c0d1b7e" + "0" * 52, "integrity": "sha384-" + "A" * 64, "size": 40960, "gzip_size": 11264})
    name: str
    url: str = Field(description="the versioned, immutable URL of the current module (content hash)")
    unversioned_url: str
    sha256: str = Field(description="hex digest of the module")
    integrity: str = Field(description="Subresource Integrity value for <script integrity=…>")
    size: int = Field(description="bytes, raw")
    gzip_size: int = Field(description="bytes, gzipped as served")


class InboxPage(BaseModel):
    user_id: str
    unread: int
    items: list[InboxItem]
    next_cursor: str | None = None


class ReadAllOut(BaseModel):
    read: int
    requires_acknowledgement: int  # items left unread because they need opening or acknowledging


class ArchivedOut(BaseModel):
    id: str
    archived: bool


class ClientDeviceOut(BaseModel):
    platform: str
    token: str = Field(description="shortened, as the recipient profile shows it")
    active: bool
    created: bool = Field(description="false: the token was already registered (it is active again)")


class ClientDeviceRemovedOut(BaseModel):
    removed: bool = Field(description="false: the token was not registered for this user")


class EngagementOut(BaseModel):
    id: str
    event: str
    outcome: str


# -- templates --------------------------------------------------------------------------------
class TemplateVersionOut(BaseModel):
    id: str
    version: int
    default_locale: str
    variables: list[str]
    channels: dict[str, Any]
    translations: dict[str, Any] | None = None
    reply_to: str | None = None
    author: str | None = None
    reason: str | None = None
    created_at: datetime


class TemplateOut(BaseModel):
    id: str
    latest_version: int
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
    latest: TemplateVersionOut | None = None


class TemplateList(BaseModel):
    templates: list[TemplateOut]
    next_cursor: str | None = None


class TemplateVersionList(BaseModel):
    versions: list[TemplateVersionOut]


class TemplatePreviewOut(BaseModel):
    id: str
    version: int
    locale: str
    variables: list[str]
    channels: dict[str, dict[str, Any]] = Field(description="per channel, the rendered fields; SMS with "
                                                             "its encoding and segments")


class PageQuery(BaseModel):
    limit: int | None = Field(default=None, ge=1, le=200)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


# -- preference center ------------------------------------------------------------------------
class CategoryPreferences(BaseModel):
    category: str
    label: str = Field(description="human label in `locale` (the policy's `labels`, else the humanised id)")
    description: str = Field(description="short text under the label, or \"\"")
    locked: bool
    unsubscribable: bool
    channels: dict[str, Any]


class ChannelLabel(BaseModel):
    id: str
    label: str


class PreferencesOut(BaseModel):
    model_config = _examples({
        "user_id": "u-1", "policy_version": "2026-12-07.1", "locale": "ko",
        "channels": [{"id": "in_app", "label": "앱 내 알림"}, {"id": "push", "label": "푸시"},
                     {"id": "sms", "label": "문자 메시지"}, {"id": "email", "label": "이메일"}],
        "categories": [{"category": "social", "label": "소셜 활동", "description": "댓글, 멘션 및 팔로우",
                        "locked": False, "unsubscribable": False,
                        "channels": {"in_app": True, "push": True, "email": False, "sms": True}}]})
    user_id: str
    policy_version: str
    locale: str = Field(description="the locale the labels are in (en when none asked for matches)")
    channels: list[ChannelLabel] = Field(description="the channels in the policy's order, labelled")
    categories: list[CategoryPreferences]


# -- compliance -------------------------------------------------------------------------------
class PolicyVersionOut(BaseModel):
    model_config = _examples({"version": "2026-03", "status": "draft", "author": "alice", "approved_by": None,
                              "created_at": "2026-03-01T09:00:00+00:00", "approved_at": None,
                              "activated_at": None, "retired_at": None})
    version: str
    status: str
    author: str
    approved_by: str | None = None
    created_at: datetime | None = None
    approved_at: datetime | None = None
    activated_at: datetime | None = None
    retired_at: datetime | None = None


class PolicyList(BaseModel):
    policies: list[PolicyVersionOut]


class PolicyDetail(PolicyVersionOut):
    model_config = _examples({"version": "2026-03", "status": "active", "author": "alice", "approved_by": "bob",
                              "created_at": "2026-03-01T09:00:00+00:00", "description": "March policy",
                              "document": "version: '2026-03'\n", "categories": {}, "thresholds": {},
                              "rules": [{"id": "otp-by-sms", "title": "One-time codes go by SMS", "cites": ["004"]}]})
    description: str | None = None
    document: str
    categories: Any = None
    thresholds: Any = None
    rules: list[dict[str, Any]]


class PolicyDiff(BaseModel):
    from_: str = Field(alias="from")
    to: str
    changes: list[Any]


class SimulationOut(BaseModel):
    policy_version: str
    baseline_version: str | None = Field(default=None, description="the active version replayed as 'before'")
    since: str
    until: str | None = None
    messages: int
    changed_count: int
    channel_mix: list[dict[str, Any]]
    first_channel_mix: list[dict[str, Any]] = Field(default_factory=list,
                                                    description="messages by the channel their plan starts on")
    changes_by_kind: list[dict[str, Any]] = Field(default_factory=list,
                                                  description="{kind, label, messages, examples} per kind of change")
    changes_by_category: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sms_segments: dict[str, int] = Field(default_factory=dict)
    rules_responsible: dict[str, int]
    changed: list[dict[str, Any]]
    changed_truncated: bool
    error_count: int
    errors: list[dict[str, Any]]
    seconds: float


class AuditEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]
    reason: str
    prev_hash: str
    hash: str


class AuditList(BaseModel):
    entries: list[AuditEntryOut]


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str | None = None
    message: str


# -- keys -------------------------------------------------------------------------------------
class ApiKeyOut(BaseModel):
    model_config = _examples({"id": "01JNQ3W5Z8A5V1M7W2Y3X4Z5A6", "name": "shop-backend", "scopes": ["read", "send"],
                              "created_at": "2026-03-01T09:00:00+00:00", "revoked_at": None,
                              "rate_limit_per_minute": None})
    id: str
    name: str
    scopes: list[str]
    created_at: datetime | None = None
    revoked_at: datetime | None = None
    rate_limit_per_minute: int | None = Field(default=None, description="null: the service default")


class ApiKeyList(BaseModel):
    keys: list[ApiKeyOut]


class RateLimitIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={
        "examples": [{"rate_limit_per_minute": 1200, "reason": "bulk import"}]})
    rate_limit_per_minute: int | None = Field(ge=1, le=1_000_000, description="null: back to the service default")
    reason: str = Field(min_length=1, max_length=2000)


# -- operations -------------------------------------------------------------------------------
class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str = Field(description="ready | not_ready")
    checks: dict[str, Any]


# -- provider webhooks (documentation of what providers send; handlers verify signatures on
# the raw body and parse it with the provider modules) ------------------------------------------
class TwilioStatusCallback(BaseModel):
    """Twilio's message status callback (form-encoded)."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"MessageSid": "SM0123456789abcdef0123456789abcdef", "MessageStatus": "delivered"}]})
    MessageSid: str
    MessageStatus: str | None = None
    ErrorCode: str | None = None


class TwilioInboundMessage(BaseModel):
    """Twilio's incoming-message webhook (form-encoded): the fields the keywords read."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"MessageSid": "SM0123456789abcdef0123456789abcdef", "From": "+447400123456", "Body": "STOP"}]})
    MessageSid: str | None = None
    From: str
    Body: str | None = None
    OptOutType: str | None = None


class SendGridEvent(BaseModel):
    event: str
    sg_message_id: str | None = None
    timestamp: int | None = None


class SendGridEvents(RootModel[list[SendGridEvent]]):
    """SendGrid Event Webhook: a JSON array of events."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        [{"event": "delivered", "sg_message_id": "abc.filter0001", "timestamp": 1767225600}]]})


class SnsMessage(BaseModel):
    """An Amazon SNS message (Notification or SubscriptionConfirmation), sent as text/plain."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses",
         "Message": "{}", "Timestamp": "2026-03-01T09:00:00Z", "SignatureVersion": "2", "Signature": "…",
         "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/cert.pem"}]})
    Type: str
    MessageId: str
    TopicArn: str
    Message: str
    Timestamp: str
    SignatureVersion: str
    Signature: str
    SigningCertURL: str
