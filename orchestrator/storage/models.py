"""SQLAlchemy 2 models. The database is the source of truth: a message, its attempts (each
a row with `due_at` and a lease) and every receipt event live here; the broker only wakes
workers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator
from ulid import ULID


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(ULID())


class UTCDateTime(TypeDecorator):
    """SQLite drops tzinfo; PostgreSQL keeps it. Store UTC, always hand back aware values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(500))
    callback_url: Mapped[str | None] = mapped_column(String(2000))
    callback_secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    # Requests per minute for this key; None: RATE_LIMIT_PER_MINUTE (rate_limits.py).
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s for s in self.scopes.split(",") if s)


class Recipient(Base):
    __tablename__ = "recipients"
    __table_args__ = (Index("ix_recipients_phone", "phone"),)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    email_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    phone_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str | None] = mapped_column(String(35))
    consents: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {category: {channel: false}}: channels the user turned off per category (recipients/preferences.py).
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    quiet_hours: Mapped[list[Any] | None]
    last_active_at: Mapped[datetime | None]
    last_heartbeat_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    devices: Mapped[list[Device]] = relationship(
        back_populates="recipient", cascade="all, delete-orphan", order_by="Device.id"
    )


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("user_id", "token", name="uq_devices_user_token"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("recipients.user_id", ondelete="CASCADE"))
    token: Mapped[str] = mapped_column(String(4096))
    platform: Mapped[str] = mapped_column(String(8))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    deactivated_at: Mapped[datetime | None]
    recipient: Mapped[Recipient] = relationship(back_populates="devices")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_user_created", "user_id", "created_at"),
        Index("ix_messages_status_send_at", "status", "send_at"),
        Index("ix_messages_key_created", "api_key_id", "created_at", "id"),
        Index("ix_messages_category_created", "category", "created_at", "id"),  # message search (0015)
    )
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    api_key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"))
    user_id: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    urgency: Mapped[str] = mapped_column(String(16), default="normal")
    marketing: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(16), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    overrides: Mapped[dict[str, Any]] = mapped_column(default=dict)
    expires_at: Mapped[datetime | None]
    policy_version: Mapped[str] = mapped_column(String(64))
    route: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The facts the decision saw, so any past decision can be re-explained and replayed.
    decision_facts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Set when the recipient was erased: content and addresses redacted (recipients/erasure.py).
    erased_at: Mapped[datetime | None]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A scheduled message (status `scheduled`) is decided when `send_at` comes (scheduling.py).
    send_at: Mapped[datetime | None]
    # Who cancelled it ({"key_id", "key_name"}) and when (POST /v1/messages/{id}/cancel).
    cancelled_at: Mapped[datetime | None]
    cancelled_by: Mapped[dict[str, Any] | None]
    attempts: Mapped[list[Attempt]] = relationship(
        back_populates="message", order_by="Attempt.step_index, Attempt.id"
    )


class Attempt(Base):
    """One step of a message's plan on one channel. `due_at` + `lease_until` make it a
    durable job: the sweeper re-enqueues due, unleased attempts; a worker claims one with a
    conditional UPDATE so a redelivered task never sends twice."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_due", "status", "due_at"),
        Index("ix_attempts_provider_msg", "provider_message_id"),
        Index("ix_attempts_inbox", "user_id", "channel", "created_at"),
        Index("ix_attempts_user_channel_status", "user_id", "channel", "status"),
    )
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    step_index: Mapped[int] = mapped_column(Integer)
    # Steps that start together (a step and the parallel steps after it) share a group; the
    # plan advances group by group without reading the route back.
    step_group: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    channel: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(4096))
    platform: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16))
    # Fallback steps are planned but not released until the steps before them have failed.
    released: Mapped[bool] = mapped_column(Boolean, default=True)
    due_at: Mapped[datetime | None]
    deadline_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    # When the broker was last asked to run this attempt; the sweeper re-asks only after a
    # grace period, so a backlog is not multiplied by re-enqueues.
    enqueued_at: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(100))
    tries: Mapped[int] = mapped_column(Integer, default=0)
    send_count: Mapped[int] = mapped_column(Integer, default=0)
    escalate_after_seconds: Mapped[int | None] = mapped_column(Integer)
    unless_status: Mapped[str | None] = mapped_column(String(16))
    hold_until: Mapped[datetime | None]
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    sandboxed: Mapped[bool] = mapped_column(Boolean, default=False)
    error_class: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    seen_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    clicked_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    archived_at: Mapped[datetime | None]  # the user archived the inbox item
    # Set by the claim (committed before the provider call). A lease that runs out while the
    # attempt is still `sending` makes the send uncertain: dispatch/uncertain.py resolves it
    # (UncertainResolution) and counts it here.
    send_started_at: Mapped[datetime | None]
    uncertain_at: Mapped[datetime | None]
    uncertain_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    uncertain_resolution: Mapped[str | None] = mapped_column(String(16))
    # In-app over the frequency cap for a user in the app: inbox entry, no live display.
    quiet: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    message: Mapped[Message] = relationship(back_populates="attempts")


class ReceiptEvent(Base):
    """Append-only: every status change of every attempt, from whatever source. A receipt
    that arrives before its attempt is known is stored with `applied=False` (parked) and
    applied when the send commits."""

    __tablename__ = "receipt_events"
    __table_args__ = (
        Index("ix_receipts_event", "source", "provider_event_id"),
        Index("ix_receipts_parked", "applied", "provider_message_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str | None] = mapped_column(String(26), index=True)
    attempt_id: Mapped[str | None] = mapped_column(String(26), index=True)
    source: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    provider_event_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(16))
    engagement: Mapped[str | None] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # ReceiptOutcome
    applied: Mapped[bool] = mapped_column(Boolean, default=True)
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewSession(Base):
    """A signed-in review page session. The cookie carries only `id`; logout ends the row,
    so a copied cookie stops working, and sessions older than the maximum age are refused."""

    __tablename__ = "review_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(26), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class Reviewer(Base):
    """A person who signs in to the review pages without holding an API key: invited by a
    one-time link or signed in by OpenID Connect. Their scopes live on `key_id`, an API key
    row whose secret nobody was ever shown (compliance/reviewers.py)."""

    __tablename__ = "reviewers"
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))  # ReviewerSource
    key_id: Mapped[str] = mapped_column(String(26), unique=True)
    # SHA-256 of "issuer sub" for single sign-on reviewers (the provider's user id is not kept in clear).
    subject_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class ReviewInvitation(Base):
    """A one-time sign-in link: only the SHA-256 of its token is stored."""

    __tablename__ = "review_invitations"
    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    reviewer_id: Mapped[str | None] = mapped_column(String(26))


class ReviewSsoState(Base):
    """A single sign-on flow between /review/sso and its callback: Authlib's state data (nonce,
    PKCE verifier, redirect URI), kept here so the browser holds only the session cookie."""

    __tablename__ = "review_sso_states"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    api_key_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column()
    message_id: Mapped[str | None] = mapped_column(String(26))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    document: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    author: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_at: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Append-only; each entry carries the hash of the previous one (tamper-evident)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # Which audit key keyed this entry's HMAC (audit/log.py); NULL: a plain SHA-256
    # entry from before keying, re-keyed at the next start.
    key_id: Mapped[str | None] = mapped_column(String(16))


AUDIT_STATE_ID = 1


class AuditState(Base):
    """One row (id 1): what the audit log has been, kept apart from its entries so that deleting
    entries does not erase it (audit/log.py, audit_checkpoints.py). No row reads as keyed
    with no checkpoint recorded: re-keying is refused."""

    __tablename__ = "audit_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # When keyed entries first existed; NULL only on a log of entries from before keying
    # (migration 0011), which `orchestrator audit rekey` may re-key once.
    keyed_since: Mapped[datetime | None]
    # Checkpoints written to AUDIT_CHECKPOINT_FILE, and the newest (signed): the file must
    # hold at least as many, and that one.
    checkpoints_written: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_checkpoint: Mapped[dict[str, Any] | None]


class Template(Base):
    """A message template; its content lives in immutable versions (content/templates.py)."""

    __tablename__ = "templates"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class TemplateVersion(Base):
    """One version of a template: per-channel sources for the default locale and its
    translations (`definition`), and the variables they use. Never updated."""

    __tablename__ = "template_versions"
    template_id: Mapped[str] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    default_locale: Mapped[str] = mapped_column(String(35))
    definition: Mapped[dict[str, Any]] = mapped_column()
    variables: Mapped[list[Any]] = mapped_column()
    author: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """Named leases, so only one process at a time runs the sweeper."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    until: Mapped[datetime]


class InAppToken(Base):
    """Per-user tokens for the in-app client (inbox, stream, engagement). Hashed like keys."""

    __tablename__ = "in_app_tokens"
    __table_args__ = (Index("ix_in_app_tokens_id", "id", unique=True),)
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # A public handle to revoke one token by, without ever handling the secret again.
    id: Mapped[str | None] = mapped_column(String(26), default=new_id)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class StatusCallback(Base):
    """Outbox of status changes to post to the product backend (the API key's callback URL).
    A row per change, delivered and retried by the dispatcher like an attempt."""

    __tablename__ = "status_callbacks"
    __table_args__ = (Index("ix_callbacks_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    api_key_id: Mapped[str] = mapped_column(String(26))
    message_id: Mapped[str] = mapped_column(String(26), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column()
    state: Mapped[str] = mapped_column(String(16))  # CallbackState
    tries: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class Confirmation(Base):
    """A message whose policy requires delivery and read confirmation (legal notices): the
    acknowledgement (who, when, through which channel) and the durable timer of its
    reminder and escalation (`due_at`, driven by the sweeper); how it was read (opened, not
    marked by "read all"); or why the policy could not deliver it at all (`undeliverable`).
    Queries: sending/confirmations."""

    __tablename__ = "confirmations"
    __table_args__ = (Index("ix_confirmations_due", "stage", "due_at"),
                      Index("ix_confirmations_created", "created_at", "message_id"))
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200))
    stage: Mapped[str] = mapped_column(String(16))  # ConfirmationStage
    due_at: Mapped[datetime | None]
    remind_after_seconds: Mapped[int] = mapped_column(Integer)
    escalate_after_seconds: Mapped[int] = mapped_column(Integer)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    reminded_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_via: Mapped[str | None] = mapped_column(String(16))  # AckChannel
    acknowledged_attempt_id: Mapped[str | None] = mapped_column(String(26))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))  # the user id
    acknowledged_token_id: Mapped[str | None] = mapped_column(String(26))  # in-app token id, if via inbox
    read_at: Mapped[datetime | None]  # first opened (a `read` report on the one item, never "read all")
    read_via: Mapped[str | None] = mapped_column(String(16))  # ReadChannel
    read_attempt_id: Mapped[str | None] = mapped_column(String(26))
    read_token_id: Mapped[str | None] = mapped_column(String(26))  # in-app token id, if opened in the inbox
    undeliverable_reason: Mapped[str | None] = mapped_column(String(500))  # stage undeliverable: the plan's why
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
