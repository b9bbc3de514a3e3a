"""Accepting a message: validate against the policy, decide the route, and commit the
message, its attempts and the idempotency record in ONE transaction. Enqueueing happens
only after that commit (the caller does it), so a crash in between loses nothing: the
sweeper finds the due attempts."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from policies import Policy

from ..content import templates
from ..domain.errors import Conflict, ErrorCode
from ..schemas import SendRequest
from ..storage.db import Database, announce
from ..storage.group_commit import GroupCommit
from ..storage.models import IdempotencyRecord
from . import scheduling
from .facts import (
    prefetch_recipients,
)
from .routing import Planned, check_against_policy, insert_planned, plan_message


class AcceptOutcome(StrEnum):
    ACCEPTED = "accepted"  # written now
    REPLAYED = "replayed"  # an Idempotency-Key seen before with the same body: its first answer again


@dataclass
class Acceptance:
    outcome: AcceptOutcome
    body: dict[str, Any]
    due_attempt_ids: list[str] = field(default_factory=list)

    @property
    def replayed(self) -> bool:
        return self.outcome is AcceptOutcome.REPLAYED


def request_hash(raw: bytes) -> str:
    """Hash of the canonical JSON, so whitespace or key order do not make a 'different' body."""
    try:
        canonical = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = raw
    return hashlib.sha256(canonical).hexdigest()


@dataclass
class PendingSend:
    """A checked request waiting to be decided and written (`write_sends`)."""

    policy: Policy
    req: SendRequest
    api_key_id: str | None
    now: datetime
    deadline_seconds: int
    presence: Any = None
    idempotency_key: str | None = None
    digest: str = ""


def accept(db: Database, policy: Policy, req: SendRequest, api_key, *, raw_body: bytes,
           idempotency_key: str | None, now: datetime, max_content_chars: int,
           deadline_seconds: int, writer: GroupCommit, presence=None,
           max_ahead_seconds: int | None = None) -> Acceptance:
    """The hot path: a cached key (no lookup), the checks, then the decision and the rows
    (message, attempts, idempotency record) written by `write_sends` — through `writer`, the
    process's group commit, so concurrent sends share one transaction. Answers only once the
    transaction holding this send has committed. Attempts due now are announced after that
    commit. A request with a future `send_at` is stored undecided (scheduling.py decides it)."""
    digest = request_hash(raw_body) if idempotency_key else ""
    if idempotency_key:
        replay = _replay(db, api_key.id, idempotency_key, digest)
        if replay:
            return replay
    req = templates.resolve(db, req, max_content_chars)  # a template rendered; per-channel content checked
    check_against_policy(policy, req, now, max_content_chars)
    scheduling.check_send_at(req, now, max_ahead_seconds)
    pending = PendingSend(policy, req, api_key.id, now, deadline_seconds, presence, idempotency_key, digest)
    try:
        planned = writer.submit(pending)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: answer as it did.
        replay = _replay(db, api_key.id, idempotency_key or "", digest)
        if replay:
            return replay
        raise
    return Acceptance(AcceptOutcome.ACCEPTED, planned.body, planned.due)


def write_sends(db: Database, sends: list[PendingSend]) -> list[Planned | Exception]:
    """Decides and writes checked sends in ONE transaction: the recipients read with one
    statement, each send decided in turn, one multi-row INSERT per table. One outcome per
    send: its `Planned`, or the exception its own decision raised (the others go on). If the
    database refuses anything (two sends with one Idempotency-Key; on PostgreSQL an error
    also aborts the rest of the transaction), each send is written again alone, so only the
    one at fault sees the error."""
    try:
        return _write_together(db, sends)
    except _Refused as refused:
        if len(sends) == 1:
            return [refused.error]
        return [write_sends(db, [send])[0] for send in sends]


class _Refused(Exception):
    """A statement of the shared transaction failed before its COMMIT (rolled back: nothing
    of it is stored). A failed COMMIT is not one: it may have committed (a connection lost
    mid-COMMIT), so writing the sends again could store them twice; it goes to every caller."""

    def __init__(self, error: DBAPIError) -> None:
        super().__init__(str(error))
        self.error = error


def _write_together(db: Database, sends: list[PendingSend]) -> list[Planned | Exception]:
    with db.session() as session:
        try:
            return _plan_and_insert(session, sends)
        except DBAPIError as exc:
            raise _Refused(exc) from exc


def _plan_and_insert(session, sends: list[PendingSend]) -> list[Planned | Exception]:
    outcomes: list[Planned | Exception] = []
    live = [s.req.recipient.user_id for s in sends if not scheduling.is_scheduled(s.req, s.now)]
    rows = prefetch_recipients(session, live) if live else {}
    conn = session.connection()
    unwritten: list[Planned] = []
    users: set[str] = set()
    for send in sends:
        user_id = send.req.recipient.user_id
        if user_id in users:
            # A second send to one user: its counters (in-app cap, frequency cap) must see
            # the first, as they would have in separate transactions.
            insert_planned(conn, unwritten)
            unwritten, users = [], set()
        try:
            if scheduling.is_scheduled(send.req, send.now):
                planned = scheduling.scheduled_message(send.req, send.api_key_id, send.now)
            else:
                planned = plan_message(session, send.policy, send.req, send.api_key_id, send.now,
                                       send.deadline_seconds, send.presence, recipient_rows=rows[user_id])
        except DBAPIError:
            raise  # the transaction may be unusable: write_sends writes each send alone
        except Exception as exc:  # noqa: BLE001 - this send's fault, answered to its caller alone
            outcomes.append(exc)
            continue
        users.add(user_id)
        unwritten.append(planned)
        outcomes.append(planned)
        announce(session, planned.due)
    insert_planned(conn, unwritten)
    # Last, so no write (and on SQLite no writer lock) is held while sends are decided.
    for send, outcome in zip(sends, outcomes, strict=True):
        if send.idempotency_key and isinstance(outcome, Planned):
            record_idempotency(conn, send.api_key_id, send.idempotency_key, send.digest, outcome.body,
                               outcome.body["id"], send.now)
    return outcomes


def record_idempotency(conn, api_key_id: str, key: str, digest: str, body: dict[str, Any],
                       message_id: str | None, now: datetime) -> None:
    """The 202 answer kept for a replay of the same Idempotency-Key (a single send or a batch),
    written in the transaction of the messages it answers for."""
    conn.execute(insert(IdempotencyRecord.__table__), [{
        "api_key_id": api_key_id, "key": key, "request_hash": digest, "response_status": 202,
        "response_body": body, "message_id": message_id, "created_at": now,
    }])


def _replay(db: Database, api_key_id: str, key: str, digest: str) -> Acceptance | None:
    with db.session() as session:
        record = session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.api_key_id == api_key_id, IdempotencyRecord.key == key))
        if record is None:
            return None
        if record.request_hash != digest:
            raise Conflict(ErrorCode.IDEMPOTENCY_CONFLICT,
                           "Idempotency-Key was already used with a different request body",
                           field="Idempotency-Key")
        return Acceptance(AcceptOutcome.REPLAYED, record.response_body)
