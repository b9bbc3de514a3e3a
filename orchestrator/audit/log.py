"""The audit log: an append-only, hash-chained record of who changed what, when and why.

Each entry's ``hash`` is HMAC-SHA256, keyed with the audit key (audit/key.py: a
secret that is not in the database), over a canonical JSON of (prev_hash, at, actor, action,
subject, detail, reason), and ``prev_hash`` is the hash of the entry before it, so editing or
deleting any row breaks the chain from that row on, and whoever can write the table but does
not hold the key cannot recompute it. ``key_id`` names the key on each entry. Deleting the
newest entries leaves a valid chain: checkpoints written outside the database catch that
(audit/checkpoints.py). Appends are serialized (one writer at a time) so two
concurrent appends cannot both chain onto the same predecessor.

Entries written before keying carry a plain SHA-256 chain and ``key_id`` NULL. ``verify``
accepts no unkeyed entry and writes nothing, ever. ``rekey_legacy`` (`orchestrator audit
rekey`, an explicit, audited command) verifies that chain and re-keys it, once, recording the
old head hash in an ``audit.rekey`` entry; it is refused once the log has ever been keyed.
That fact lives in the ``audit_state`` row (migration 0011), apart from the entries, so
deleting entries does not erase it; and while a log of entries from before keying awaits
its re-key, the service does not start and nothing more is appended (a keyed entry after
them would make the re-key impossible). Someone who can write the database can also rewrite
that row: what they cannot do is MAC an entry or a checkpoint, or reach a checkpoint copy
kept off the host (docs/AUDIT.md states the threat model).

Service API (all take an open SQLAlchemy session; the caller's transaction commits):
- ``append(session, actor=, action=, subject=, detail=, reason=, now=) -> AuditEntry``
- ``lock(session)``: take the audit/policy write lock for this transaction
- ``recent(session, limit=100, subject=None, action=None) -> list[AuditEntry]``
- ``verify(session) -> VerifyResult``: walk the chain; first broken entry id
- ``state(session) -> State``: whether the log was ever keyed; the checkpoints written
- ``rekey_legacy(session, now, actor=, reason=) -> int``: the one-time re-key (RekeyRefused)
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

from ..config import ConfigError
from ..domain.errors import ErrorCode, Unavailable
from ..storage.models import AUDIT_STATE_ID, AuditEntry, AuditState
from .key import AuditKey

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
            from .key import load

            _DEFAULT.append(load(Settings.from_env()))
        return _DEFAULT[0]


def lock(session: Session) -> None:
    """Serialize writers for the rest of this transaction. PostgreSQL: a transaction-scoped
    advisory lock. SQLite: a write statement first, which takes the database write lock (the
    same trick as lifecycle.plans.load_orm), so the reads that follow are current."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
    else:
        session.execute(update(AuditEntry).where(AuditEntry.id == -1).values(actor=AuditEntry.actor)
                        .execution_options(synchronize_session=False))


REKEY_COMMAND = 'orchestrator audit rekey --reason "upgrade"'


@dataclass(frozen=True)
class State:
    """The audit_state row. No row (it is made by migration 0011) reads as keyed."""

    keyed_since: datetime | None = None
    checkpoints_written: int = 0
    last_checkpoint: dict[str, Any] | None = None
    recorded: bool = False

    @property
    def rekey_pending(self) -> bool:
        """Only entries from before keying so far: `audit rekey` may re-key them, once."""
        return self.recorded and self.keyed_since is None


def state(session: Session) -> State:
    s = AuditState
    row = session.execute(select(s.keyed_since, s.checkpoints_written, s.last_checkpoint)
                          .where(s.id == AUDIT_STATE_ID)).first()
    if row is None:
        return State()
    return State(row.keyed_since, row.checkpoints_written or 0, row.last_checkpoint, True)


def update_state(session: Session, now: datetime, **values: Any) -> None:
    """Changes the audit_state row; a missing row is made again first, as keyed since `now`."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    session.execute(insert(AuditState).values(id=AUDIT_STATE_ID, keyed_since=now, checkpoints_written=0)
                    .on_conflict_do_nothing(index_elements=[AuditState.id]))
    session.execute(update(AuditState).where(AuditState.id == AUDIT_STATE_ID).values(**values)
                    .execution_options(synchronize_session=False))


def append(session: Session, *, actor: str, action: str, subject: str, now: datetime,
           detail: dict[str, Any] | None = None, reason: str = "") -> AuditEntry:
    """Append one entry, chained onto the last one. Commits with the caller's transaction, so
    the change and its audit record are durable together or not at all. The first keyed
    entry records in audit_state that the log is keyed (no re-key from then on)."""
    lock(session)
    # Detail goes through JSON once so what is hashed is exactly what the column hands back.
    detail = json.loads(json.dumps(detail or {}, default=str))
    at = now.astimezone(UTC)
    key = key_for(session)
    last = session.execute(select(AuditEntry.hash, AuditEntry.key_id).order_by(AuditEntry.id.desc()).limit(1)).first()
    if state(session).rekey_pending:
        if last is not None and last.key_id is None:
            # A keyed entry after them would make their re-key impossible (the service does
            # not start in this state: install_audit_key; this guards every other path).
            raise Unavailable(ErrorCode.UNAVAILABLE, "the audit log holds entries from before keying: an "
                                                       f"operator must run `{REKEY_COMMAND}` once before anything "
                                                       "more can be audited")
        update_state(session, at, keyed_since=at)
    prev = last.hash if last is not None else GENESIS_HASH
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
            return VerifyResult(False, checked, r.id, _unkeyed_problem(state(session)), found, last_id)
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


def _unkeyed_problem(st: State) -> str:
    if st.rekey_pending:
        return (f"the entry is not keyed (from before keying): after an upgrade from a version before 0010, run "
                f"`{REKEY_COMMAND}` once; otherwise this is a forgery, do not re-key (docs/AUDIT.md)")
    since = f" since {st.keyed_since.isoformat(timespec='seconds')}" if st.keyed_since else ""
    return (f"the entry is not keyed (a plain SHA-256 hash anyone can recompute), but the log has been keyed{since}: "
            f"written behind the service's back (re-keying is refused)")


def install_audit_key(settings, db) -> None:
    """At every start: the configured audit key for this database (ConfigError when it cannot
    be used). A log of entries from before keying that awaits its re-key stops the start
    (ConfigError naming the command); unkeyed entries in a keyed log are logged (`audit
    verify` reports them) and never re-keyed."""
    from .key import load

    use_key(db.engine, load(settings))
    with db.session() as session:
        unkeyed = session.scalar(select(AuditEntry.id).where(AuditEntry.key_id.is_(None))
                                 .order_by(AuditEntry.id).limit(1))
        st = state(session) if unkeyed is not None else None
    if st is None:
        return
    if st.rekey_pending:
        raise ConfigError(f"the audit log holds entries from before keying (this database was upgraded from a "
                          f"version before 0010): run `{REKEY_COMMAND}` once to verify and re-key them, then start")
    log.error("the audit log holds unkeyed entries (from entry %s) although it is keyed: written behind the "
              "service's back; `orchestrator audit verify` reports them", unkeyed, extra={"event": "audit.unkeyed"})


def head(session: Session) -> tuple[int, int, str]:
    """(number of entries, id of the last, its hash): what a checkpoint anchors."""
    count = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
    last = session.execute(select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)).first()
    return (count, last.id, last.hash) if last else (0, 0, GENESIS_HASH)


class RekeyRefused(Exception):
    """`audit rekey` would vouch for entries it cannot trust; the message says why."""


def rekey_legacy(session: Session, now: datetime, *, actor: str, reason: str, checkpoints_in: str | None = None
                 ) -> int:
    """Re-keys a log of entries written before keying (key_id NULL), once, under the audit
    lock, and records it (an ``audit.rekey`` entry by `actor`, with the old head hash). Refused
    (RekeyRefused) once the log has ever been keyed (audit_state, or a keyed entry, or a
    checkpoint written, or `checkpoints_in`: where the caller found checkpoints outside the
    database), and when the plain chain does not verify: a forged or broken chain is never
    laundered into a valid keyed one. Returns how many entries were re-keyed."""
    lock(session)
    st = state(session)
    if not st.rekey_pending:
        since = f" since {st.keyed_since.isoformat(timespec='seconds')}" if st.keyed_since else ""
        raise RekeyRefused(f"the audit log has been keyed{since}: unkeyed entries in it were written behind the "
                           f"service's back, and re-keying them would vouch for them")
    if st.checkpoints_written:
        raise RekeyRefused(f"{st.checkpoints_written} checkpoint(s) of the keyed log have been written: the log "
                           f"has been keyed")
    if checkpoints_in:
        raise RekeyRefused(f"{checkpoints_in} holds checkpoints of the keyed log: the log has been keyed")
    key = key_for(session)
    rows = list(_rows(session, 1000))
    if not rows:
        raise RekeyRefused("the audit log is empty: nothing to re-key")
    keyed = next((r for r in rows if r.key_id is not None), None)
    if keyed is not None:
        raise RekeyRefused(f"entry {keyed.id} is keyed: the log has been keyed, and re-keying the unkeyed entries "
                           f"would vouch for them")
    prev = GENESIS_HASH
    for r in rows:
        if r.prev_hash != prev or compute_hash(prev, r.at, r.actor, r.action, r.subject, r.detail or {},
                                               r.reason or "") != r.hash:
            raise RekeyRefused(f"the unkeyed chain is broken at entry {r.id} (an entry was altered, removed or "
                               f"inserted): re-keying would launder it")
        prev = r.hash
    legacy_head = prev
    new_prev = GENESIS_HASH
    for r in rows:
        new_hash = keyed_hash(key, new_prev, r.at, r.actor, r.action, r.subject, r.detail or {}, r.reason or "")
        session.execute(update(AuditEntry).where(AuditEntry.id == r.id)
                        .values(prev_hash=new_prev, hash=new_hash, key_id=key.key_id)
                        .execution_options(synchronize_session=False))
        new_prev = new_hash
    # The head is keyed now: this append records the log as keyed (audit_state).
    append(session, actor=actor, action=AuditAction.AUDIT_REKEY, subject="audit", now=now,
           detail={"entries": len(rows), "legacy_head_hash": legacy_head, "key_id": key.key_id}, reason=reason)
    log.warning("audit log re-keyed", extra={"count": len(rows), "event": "audit.rekey"})
    return len(rows)


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": _iso(entry.at), "actor": entry.actor, "action": entry.action,
            "subject": entry.subject, "detail": entry.detail, "reason": entry.reason,
            "prev_hash": entry.prev_hash, "hash": entry.hash, "key_id": entry.key_id}
