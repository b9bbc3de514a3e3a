"""The audit log: an append-only, hash-chained record of who changed what, when and why.

Each entry's ``hash`` is SHA-256 over a canonical JSON of (prev_hash, at, actor, action,
subject, detail, reason), and ``prev_hash`` is the hash of the entry before it, so editing or
deleting any row breaks the chain from that row on. Appends are serialized (one writer at a
time) so two concurrent appends cannot both chain onto the same predecessor.

Service API (all take an open SQLAlchemy session; the caller's transaction commits):
- ``append(session, actor=, action=, subject=, detail=, reason=, now=) -> AuditEntry``
- ``lock(session)``: take the audit/policy write lock for this transaction
- ``recent(session, limit=100, subject=None, action=None) -> list[AuditEntry]``
- ``verify(session) -> VerifyResult``: walk the chain; first broken entry id
- ``entry_dict(entry) -> dict``: JSON shape used by the API
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from ..storage.models import AuditEntry

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key shared by every audit append and policy lifecycle change.
_PG_LOCK_KEY = 0x0A0D17


class AuditAction:
    """Stable action names (strings in the table)."""

    POLICY_SEED = "policy.seed"
    POLICY_DRAFT = "policy.draft"
    POLICY_EDIT = "policy.edit"
    POLICY_APPROVE = "policy.approve"
    POLICY_ACTIVATE = "policy.activate"
    POLICY_RETIRE = "policy.retire"
    KEY_CREATE = "key.create"
    KEY_SCOPES = "key.scopes"
    KEY_REVOKE = "key.revoke"


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def compute_hash(prev_hash: str, at: datetime, actor: str, action: str, subject: str,
                 detail: dict[str, Any], reason: str) -> str:
    canonical = json.dumps(
        {"prev_hash": prev_hash, "at": _iso(at), "actor": actor, "action": action, "subject": subject,
         "detail": detail, "reason": reason},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def lock(session: Session) -> None:
    """Serialize writers for the rest of this transaction. PostgreSQL: a transaction-scoped
    advisory lock. SQLite: a write statement first, which takes the database write lock (the
    same trick as dispatch.plan_progress.lock_message), so the reads that follow are current."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        session.execute(update(AuditEntry).where(AuditEntry.id == -1).values(actor=AuditEntry.actor)
                        .execution_options(synchronize_session=False))


def append(session: Session, *, actor: str, action: str, subject: str, now: datetime,
           detail: dict[str, Any] | None = None, reason: str = "") -> AuditEntry:
    """Append one entry, chained onto the last one. Commits with the caller's transaction, so
    the change and its audit record are durable together or not at all."""
    lock(session)
    # Detail goes through JSON once so what is hashed is exactly what the column hands back.
    detail = json.loads(json.dumps(detail or {}, default=str))
    at = now.astimezone(UTC)
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS_HASH
    entry = AuditEntry(at=at, actor=actor, action=action, subject=subject, detail=detail,
                       reason=reason or "", prev_hash=prev,
                       hash=compute_hash(prev, at, actor, action, subject, detail, reason or ""))
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, limit: int = 100, *, subject: str | None = None,
           action: str | None = None) -> list[AuditEntry]:
    """Newest first."""
    return list(session.scalars(entries_query(subject=subject, action=action)
                                .order_by(AuditEntry.id.desc()).limit(limit)))


def entries_query(*, subject: str | None = None, action: str | None = None):
    """Entries matching the filters (the caller orders and pages)."""
    query = select(AuditEntry)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return query


def actors_for(session: Session, subject: str, actions: tuple[str, ...]) -> set[str]:
    rows = session.scalars(select(AuditEntry.actor).where(AuditEntry.subject == subject,
                                                          AuditEntry.action.in_(actions)))
    return set(rows)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_broken_id: int | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_broken_id": self.first_broken_id,
                "problem": self.problem}

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit log intact: {self.checked} entries verified"
        return f"audit log TAMPERED at entry {self.first_broken_id}: {self.problem}"


def verify(session: Session, batch_size: int = 1000) -> VerifyResult:
    """Walk the chain in id order (keyset pages) and report the first entry whose stored hash
    does not match its content or whose prev_hash does not match its predecessor."""
    prev = GENESIS_HASH
    last_id = 0
    checked = 0
    while True:
        rows = session.execute(
            select(AuditEntry.id, AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.subject,
                   AuditEntry.detail, AuditEntry.reason, AuditEntry.prev_hash, AuditEntry.hash)
            .where(AuditEntry.id > last_id).order_by(AuditEntry.id).limit(batch_size)
        ).all()
        if not rows:
            return VerifyResult(True, checked)
        for r in rows:
            if r.prev_hash != prev:
                return VerifyResult(False, checked, r.id,
                                    "prev_hash does not match the previous entry (an entry was removed or altered)")
            expected = compute_hash(r.prev_hash, r.at, r.actor, r.action, r.subject, r.detail or {},
                                    r.reason or "")
            if expected != r.hash:
                return VerifyResult(False, checked, r.id, "content does not match its hash (the entry was altered)")
            prev = r.hash
            checked += 1
            last_id = r.id


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": _iso(entry.at), "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "detail": entry.detail, "reason": entry.reason,
            "prev_hash": entry.prev_hash, "hash": entry.hash}
