"""The audit log: an append-only, hash-chained record of who changed what, when and why.

Each entry's ``hash`` is HMAC-SHA256, keyed with the audit key (services/audit_key.py: a
secret that is not in the database), over a canonical JSON of (prev_hash, at, actor, action,
subject, detail, reason), and ``prev_hash`` is the hash of the entry before it, so editing or
deleting any row breaks the chain from that row on, and whoever can write the table but does
not hold the key cannot recompute it. ``key_id`` names the key on each entry. Deleting the
newest entries leaves a valid chain: checkpoints written outside the database catch that
(services/audit_checkpoints.py). Appends are serialized (one writer at a time) so two
concurrent appends cannot both chain onto the same predecessor.

Entries written before keying carry a plain SHA-256 chain and ``key_id`` NULL; ``rekey_legacy``
(run at every start by the composition root) verifies that chain and re-keys it, recording
the old head hash in an ``audit.rekey`` entry. ``verify`` accepts no unkeyed entry.

Service API (all take an open SQLAlchemy session; the caller's transaction commits):
- ``append(session, actor=, action=, subject=, detail=, reason=, now=) -> AuditEntry``
- ``lock(session)``: take the audit/policy write lock for this transaction
- ``recent(session, limit=100, subject=None, action=None) -> list[AuditEntry]``
- ``verify(session) -> VerifyResult``: walk the chain; first broken entry id
- ``use_key(engine, key)``: the audit key for a database (bootstrap and the CLI set it)
- ``head(session) -> (count, head_id, head_hash)``: what a checkpoint records
- ``entry_dict(entry) -> dict``: JSON shape used by the API
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from ..storage.models import AuditEntry
from .audit_key import AuditKey

log = logging.getLogger("orchestrator.audit")

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
    AUDIT_REKEY = "audit.rekey"


def _iso(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(prev_hash: str, at: datetime, actor: str, action: str, subject: str,
               detail: dict[str, Any], reason: str) -> bytes:
    return json.dumps(
        {"prev_hash": prev_hash, "at": _iso(at), "actor": actor, "action": action, "subject": subject,
         "detail": detail, "reason": reason},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str,
    ).encode("utf-8")


def compute_hash(prev_hash: str, at: datetime, actor: str, action: str, subject: str,
                 detail: dict[str, Any], reason: str) -> str:
    """The LEGACY unkeyed hash (plain SHA-256) of entries written before keying: anyone can
    compute it, so it is only used to check a legacy chain before re-keying it."""
    return hashlib.sha256(_canonical(prev_hash, at, actor, action, subject, detail, reason)).hexdigest()


def keyed_hash(key: AuditKey, prev_hash: str, at: datetime, actor: str, action: str, subject: str,
               detail: dict[str, Any], reason: str) -> str:
    return key.mac(_canonical(prev_hash, at, actor, action, subject, detail, reason))


# The audit key per database engine (bootstrap and the CLI set it); an engine nobody set
# (a script using Database directly) gets the key the environment configures.
_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_DEFAULT: list[AuditKey] = []
_DEFAULT_LOCK = threading.Lock()


def use_key(engine, key: AuditKey) -> None:
    _KEYS[engine] = key


def key_for(session: Session) -> AuditKey:
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    key = _KEYS.get(engine)
    if key is not None:
        return key
    with _DEFAULT_LOCK:
        if not _DEFAULT:
            from ..config import Settings
            from .audit_key import load

            _DEFAULT.append(load(Settings.from_env()))
        return _DEFAULT[0]


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
    key = key_for(session)
    prev = session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)) or GENESIS_HASH
    entry = AuditEntry(at=at, actor=actor, action=action, subject=subject, detail=detail,
                       reason=reason or "", prev_hash=prev, key_id=key.key_id,
                       hash=keyed_hash(key, prev, at, actor, action, subject, detail, reason or ""))
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
    # For checkpoint checks: entry id -> (its position in the chain, 1-based; its hash), for
    # the ids asked for; and the last entry's id.
    found: dict[int, tuple[int, str]] = field(default_factory=dict, repr=False, compare=False)
    last_id: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "first_broken_id": self.first_broken_id,
                "problem": self.problem}

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit log intact: {self.checked} entries verified"
        return f"audit log TAMPERED at entry {self.first_broken_id}: {self.problem}"


_ROW = (AuditEntry.id, AuditEntry.at, AuditEntry.actor, AuditEntry.action, AuditEntry.subject, AuditEntry.detail,
        AuditEntry.reason, AuditEntry.prev_hash, AuditEntry.hash, AuditEntry.key_id)


def _rows(session: Session, batch_size: int):
    """Every entry in id order, in keyset pages."""
    last_id = 0
    while True:
        rows = session.execute(select(*_ROW).where(AuditEntry.id > last_id).order_by(AuditEntry.id)
                               .limit(batch_size)).all()
        if not rows:
            return
        yield from rows
        last_id = rows[-1].id


def verify(session: Session, batch_size: int = 1000, *, want_ids: set[int] | frozenset[int] = frozenset()
           ) -> VerifyResult:
    """Walk the chain in id order and report the first entry that is not keyed with this
    service's key, whose MAC does not match its content, or whose prev_hash does not match
    its predecessor. Without the key, a rewritten entry cannot be given a valid MAC."""
    key = key_for(session)
    prev = GENESIS_HASH
    checked = 0
    found: dict[int, tuple[int, str]] = {}
    last_id = 0
    for r in _rows(session, batch_size):
        if r.key_id is None:
            return VerifyResult(False, checked, r.id, "the entry is not keyed (a plain SHA-256 hash anyone can "
                                                      "recompute): written behind the service's back, or never "
                                                      "re-keyed", found, last_id)
        if r.key_id != key.key_id:
            return VerifyResult(False, checked, r.id, f"the entry is keyed with another key (key id {r.key_id}; "
                                                      f"this service's is {key.key_id}): a wrong AUDIT_KEY or "
                                                      f"key file, or a forged entry", found, last_id)
        if r.prev_hash != prev:
            return VerifyResult(False, checked, r.id,
                                "prev_hash does not match the previous entry (an entry was removed or altered)",
                                found, last_id)
        expected = keyed_hash(key, r.prev_hash, r.at, r.actor, r.action, r.subject, r.detail or {}, r.reason or "")
        if not hmac.compare_digest(expected, r.hash):
            return VerifyResult(False, checked, r.id, "content does not match its hash (the entry was altered)",
                                found, last_id)
        prev = r.hash
        checked += 1
        last_id = r.id
        if r.id in want_ids:
            found[r.id] = (checked, r.hash)
    return VerifyResult(True, checked, found=found, last_id=last_id)


def install_audit_key(settings, db) -> None:
    """At every start: the configured audit key for this database (ConfigError when it cannot
    be used), and entries from before keying re-keyed."""
    from .audit_key import load

    use_key(db.engine, load(settings))
    with db.session() as session:
        rekey_legacy(session, datetime.now(UTC))


def head(session: Session) -> tuple[int, int, str]:
    """(number of entries, id of the last, its hash): what a checkpoint anchors."""
    count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    last = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    return (count, last.id, last.hash) if last else (0, 0, GENESIS_HASH)


def rekey_legacy(session: Session, now: datetime) -> int:
    """Re-keys entries written before keying (key_id NULL), once, under the audit lock. Their
    plain chain is verified first: a broken legacy chain is left as it is (and `verify`
    reports it), never laundered into a valid keyed one. Returns how many were re-keyed."""
    if session.scalar(select(AuditEntry.id).where(AuditEntry.key_id.is_(None)).limit(1)) is None:
        return 0
    lock(session)
    key = key_for(session)
    rows = list(_rows(session, 1000))
    legacy = [r for r in rows if r.key_id is None]
    if not legacy:
        return 0
    if len(legacy) != len(rows):
        # Unkeyed entries beside keyed ones: a process of an older version still running, or a
        # forgery. Re-keying would vouch for them; leave them for `audit verify` to report.
        log.error("audit log: unkeyed entries beside keyed ones; not re-keying (audit verify reports them)")
        return 0
    prev = GENESIS_HASH
    for r in legacy:
        if r.prev_hash != prev or compute_hash(prev, r.at, r.actor, r.action, r.subject, r.detail or {},
                                               r.reason or "") != r.hash:
            log.error("audit log: the unkeyed chain is broken at entry %s; not re-keying (audit verify reports it)",
                      r.id)
            return 0
        prev = r.hash
    legacy_head = prev
    new_prev = GENESIS_HASH
    for r in rows:
        new_hash = keyed_hash(key, new_prev, r.at, r.actor, r.action, r.subject, r.detail or {}, r.reason or "")
        session.execute(update(AuditEntry).where(AuditEntry.id == r.id)
                        .values(prev_hash=new_prev, hash=new_hash, key_id=key.key_id)
                        .execution_options(synchronize_session=False))
        new_prev = new_hash
    append(session, actor="system", action=AuditAction.AUDIT_REKEY, subject="audit", now=now,
           detail={"entries": len(legacy), "legacy_head_hash": legacy_head, "key_id": key.key_id},
           reason="upgrade: entries hashed with plain SHA-256 re-keyed with the audit key")
    log.warning("audit log re-keyed", extra={"count": len(legacy), "event": "audit.rekey"})
    return len(legacy)


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": _iso(entry.at), "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "detail": entry.detail, "reason": entry.reason,
            "prev_hash": entry.prev_hash, "hash": entry.hash, "key_id": entry.key_id}
