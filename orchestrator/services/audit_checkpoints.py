"""Checkpoints anchor the audit chain outside the database. Each records the number of
entries, the last entry's id and hash, the time and the key id, with an HMAC under the audit
key, and is exported three ways, none of which a database administrator can rewrite:

- a line appended to `AUDIT_CHECKPOINT_FILE` (default `<ORCHESTRATOR_DATA_DIR>/audit-checkpoints.jsonl`,
  opened O_APPEND, mode 0600; make it append-only with `chattr +a` or ship it off the host);
- a structured log line (`event: audit.checkpoint`), for the log pipeline to keep;
- optionally a POST of the same JSON to `AUDIT_CHECKPOINT_WEBHOOK_URL`.

The sweeper loop (the scheduler, or `serve` in the embedded default) writes one every
`AUDIT_CHECKPOINT_INTERVAL_SECONDS`; `orchestrator audit checkpoint` writes one on demand.
`check` then finds what the keyed chain alone cannot: entries deleted from the end (the chain
left is valid), and a log rewritten from an anchored entry on; and says when the anchor itself
is missing or stale (older than AUDIT_CHECKPOINT_STALE_INTERVALS intervals). Entries appended
after the newest checkpoint are only covered from the next one on."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..storage.models import AuditEntry
from . import audit
from .audit_key import AuditKey

log = logging.getLogger("orchestrator.audit")

WEBHOOK_TIMEOUT_SECONDS = 5.0


class AnchorStatus(StrEnum):
    ANCHORED = "anchored"      # every checkpoint matches the log, and the newest is fresh
    NOT_DUE = "not_due"        # no checkpoint yet, and none was due yet
    TAMPERED = "tampered"      # the log disagrees with a checkpoint, or a checkpoint is forged
    MISSING = "missing"        # entries old enough to be anchored, and no checkpoint at all
    STALE = "stale"            # the newest checkpoint is older than the allowed intervals


EXIT_CODES = {AnchorStatus.ANCHORED: 0, AnchorStatus.NOT_DUE: 0, AnchorStatus.TAMPERED: 1,
              AnchorStatus.MISSING: 3, AnchorStatus.STALE: 3}


@dataclass(frozen=True)
class Checkpoint:
    at: str
    count: int
    head_id: int
    head_hash: str
    key_id: str
    mac: str = ""

    def body(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "mac"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: AuditKey) -> Checkpoint:
        return Checkpoint(self.at, self.count, self.head_id, self.head_hash, self.key_id, key.mac(self.body()))

    def valid(self, key: AuditKey) -> bool:
        import hmac

        return hmac.compare_digest(key.mac(self.body()), self.mac)

    @property
    def time(self) -> datetime:
        return datetime.fromisoformat(self.at)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make(session: Session, now: datetime) -> Checkpoint:
    key = audit.key_for(session)
    count, head_id, head_hash = audit.head(session)
    at = now.astimezone(UTC).isoformat(timespec="microseconds")
    return Checkpoint(at, count, head_id, head_hash, key.key_id).signed(key)


def write(settings, db, now: datetime) -> Checkpoint:
    """Takes a checkpoint and exports it: file, log line, webhook. The file write raises
    (OSError) when it fails; the webhook only logs."""
    with db.session() as session:
        checkpoint = make(session, now)
    line = json.dumps(checkpoint.to_dict(), sort_keys=True) + "\n"
    path = Path(settings.audit_checkpoint_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("audit checkpoint", extra={"event": "audit.checkpoint", "checkpoint": checkpoint.to_dict()})
    if settings.audit_checkpoint_webhook_url:
        try:
            httpx.post(settings.audit_checkpoint_webhook_url, json=checkpoint.to_dict(),
                       timeout=WEBHOOK_TIMEOUT_SECONDS).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("audit checkpoint webhook failed", extra={"event": "audit.checkpoint",
                                                                  "error_code": type(exc).__name__})
    return checkpoint


def read(path: str | Path) -> tuple[list[Checkpoint], list[str]]:
    """The file's checkpoints in order, and a problem for each line that is not one. No file:
    none. A file that cannot be read raises OSError."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], []
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            cp = Checkpoint(str(raw["at"]), int(raw["count"]), int(raw["head_id"]), str(raw["head_hash"]),
                            str(raw["key_id"]), str(raw["mac"]))
            cp.time  # noqa: B018 - parses
        except (ValueError, KeyError, TypeError):
            problems.append(f"checkpoint file line {n} is not a checkpoint")
            continue
        checkpoints.append(cp)
    return checkpoints, problems


def last_time(path: str | Path) -> datetime | None:
    try:
        checkpoints, _ = read(path)
    except OSError:
        return None
    return max((c.time for c in checkpoints), default=None)


_FAILED_AT: dict[str, datetime] = {}


def maybe_write(settings, db, now: datetime) -> Checkpoint | None:
    """The periodic hook: a checkpoint when the newest in the file is an interval old. A file
    that cannot be written is logged as an error once per interval, not on every pass (and
    `audit verify` will call the anchor stale)."""
    interval = timedelta(seconds=settings.audit_checkpoint_interval_seconds)
    path = settings.audit_checkpoint_file
    failed = _FAILED_AT.get(path)
    if failed is not None and now - failed < interval:
        return None
    last = last_time(path)
    if last is not None and now - last < interval:
        return None
    try:
        checkpoint = write(settings, db, now)
    except OSError as exc:
        _FAILED_AT[path] = now
        log.error("audit checkpoint could not be written to %s (%s)", path, exc.strerror or type(exc).__name__,
                  extra={"event": "audit.checkpoint"})
        return None
    _FAILED_AT.pop(path, None)
    return checkpoint


@dataclass(frozen=True)
class AnchorResult:
    status: AnchorStatus
    problem: str | None
    checkpoints: int
    latest: dict[str, Any] | None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "problem": self.problem, "checkpoints": self.checkpoints,
                "latest": self.latest}


def check(session: Session, settings, now: datetime) -> tuple[audit.VerifyResult, AnchorResult]:
    """The keyed chain, and the chain against every checkpoint in the file."""
    key = audit.key_for(session)
    try:
        checkpoints, problems = read(settings.audit_checkpoint_file)
    except OSError as exc:
        chain = audit.verify(session)
        return chain, AnchorResult(AnchorStatus.MISSING, f"the checkpoint file {settings.audit_checkpoint_file} "
                                                         f"cannot be read ({exc.strerror or type(exc).__name__})",
                                   0, None)
    chain = audit.verify(session, want_ids={c.head_id for c in checkpoints})

    def result(status: AnchorStatus, problem: str | None) -> tuple[audit.VerifyResult, AnchorResult]:
        latest = max(checkpoints, key=lambda c: c.time, default=None)
        return chain, AnchorResult(status, problem, len(checkpoints), latest.to_dict() if latest else None)

    if problems:
        return result(AnchorStatus.TAMPERED, problems[0])
    for cp in checkpoints:
        if not cp.valid(key):
            return result(AnchorStatus.TAMPERED, f"the checkpoint of {cp.at} is not signed with this service's "
                                                 f"audit key (key id {key.key_id}): forged, or a wrong key")
        if cp.head_id == 0:
            continue
        if cp.head_id in chain.found:
            position, head_hash = chain.found[cp.head_id]
            if head_hash != cp.head_hash:
                return result(AnchorStatus.TAMPERED, f"entry {cp.head_id} differs from the checkpoint of {cp.at}: "
                                                     f"the log was rewritten from there on")
            if position != cp.count:
                return result(AnchorStatus.TAMPERED, f"the checkpoint of {cp.at} counted {cp.count} entries up to "
                                                     f"entry {cp.head_id}; the log now has {position}: entries "
                                                     f"were removed or inserted")
        elif chain.ok:
            if cp.head_id > chain.last_id:
                return result(AnchorStatus.TAMPERED, f"the checkpoint of {cp.at} anchored {cp.count} entries up to "
                                                     f"entry {cp.head_id}, but the log ends at entry "
                                                     f"{chain.last_id or 'none'}: entries were deleted from the end")
            return result(AnchorStatus.TAMPERED, f"entry {cp.head_id}, anchored by the checkpoint of {cp.at}, "
                                                 f"is missing")
    max_age = timedelta(seconds=settings.audit_checkpoint_interval_seconds * settings.audit_checkpoint_stale_intervals)
    if not checkpoints:
        oldest = session.scalar(select(func.min(AuditEntry.at)))
        if oldest is not None and now - oldest > max_age:
            return result(AnchorStatus.MISSING, f"no checkpoint in {settings.audit_checkpoint_file}, and entries "
                                                f"date from {oldest.isoformat(timespec='seconds')}: run the "
                                                f"scheduler (or serve), or `orchestrator audit checkpoint`")
        return result(AnchorStatus.NOT_DUE, None)
    newest = max(c.time for c in checkpoints)
    if now - newest > max_age:
        return result(AnchorStatus.STALE, f"the newest checkpoint is from {newest.isoformat(timespec='seconds')}, "
                                          f"more than {settings.audit_checkpoint_stale_intervals} intervals of "
                                          f"{settings.audit_checkpoint_interval_seconds:g} s ago: is the scheduler "
                                          f"running?")
    return result(AnchorStatus.ANCHORED, None)
