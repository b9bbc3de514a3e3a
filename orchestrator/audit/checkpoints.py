"""Checkpoints anchor the audit chain outside the database. Each records the number of
entries, the last entry's id and hash, the time and the key id, with an HMAC under the audit
key, and is exported three ways:

- a line appended to `AUDIT_CHECKPOINT_FILE` (default `<ORCHESTRATOR_DATA_DIR>/audit-checkpoints.jsonl`,
  opened O_APPEND, mode 0600), after which the database records how many were written and the
  newest (audit_state), so a deleted or truncated file is found, not read as "none yet";
- a structured log line (`event: audit.checkpoint`), for the log pipeline to keep;
- optionally a POST of the same JSON to `AUDIT_CHECKPOINT_WEBHOOK_URL`.

The file sits beside the database, where whoever rewrites the one may rewrite the other
(database record included). What they cannot rewrite is a copy kept off the host: the webhook
sink's, or the log pipeline's. `AUDIT_ANCHOR_FILE` (or `audit verify --anchor`) points at such
a copy (checkpoint lines, or the service's JSON log lines) and `check` holds the log to it too
(docs/AUDIT.md).

The sweeper loop (the scheduler, or `serve` in the embedded default) writes one every
`AUDIT_CHECKPOINT_INTERVAL_SECONDS`; `orchestrator audit checkpoint` writes one on demand.
`check` (read-only) then finds what the keyed chain alone cannot: entries deleted from the end
(the chain left is valid), and a log rewritten from an anchored entry on; and says when an
anchor is missing or stale (older than AUDIT_CHECKPOINT_STALE_INTERVALS intervals). Entries
appended after the newest checkpoint are only covered from the next one on."""

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

from ..storage.models import AuditEntry, AuditState
from . import log as audit
from .key import AuditKey

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

    @classmethod
    def parse(cls, raw: Any) -> Checkpoint:
        """ValueError, KeyError or TypeError when `raw` is not a checkpoint."""
        cp = cls(str(raw["at"]), int(raw["count"]), int(raw["head_id"]), str(raw["head_hash"]), str(raw["key_id"]),
                 str(raw["mac"]))
        cp.time  # noqa: B018 - parses
        return cp


def make(session: Session, now: datetime) -> Checkpoint:
    key = audit.key_for(session)
    count, head_id, head_hash = audit.head(session)
    at = now.astimezone(UTC).isoformat(timespec="microseconds")
    return Checkpoint(at, count, head_id, head_hash, key.key_id).signed(key)


def write(settings, db, now: datetime) -> Checkpoint:
    """Takes a checkpoint and exports it: file, then its record in the database (in that
    order, so the file never holds fewer than the database says were written), log line,
    webhook. The file write raises (OSError) when it fails; the webhook only logs."""
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
    with db.session() as session:
        audit.update_state(session, now, checkpoints_written=AuditState.checkpoints_written + 1,
                           last_checkpoint=checkpoint.to_dict())
    log.info("audit checkpoint", extra={"event": "audit.checkpoint", "checkpoint": checkpoint.to_dict()})
    if settings.audit_checkpoint_webhook_url:
        try:
            httpx.post(settings.audit_checkpoint_webhook_url, json=checkpoint.to_dict(),
                       timeout=WEBHOOK_TIMEOUT_SECONDS).raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("audit checkpoint webhook failed", extra={"event": "audit.checkpoint",
                                                                  "error_code": type(exc).__name__})
    return checkpoint


def read(path: str | Path, *, what: str = "checkpoint file", log_lines: bool = False
         ) -> tuple[list[Checkpoint], list[str]]:
    """The file's checkpoints in order, and a problem for each line that is not one. A file
    that is missing or cannot be read raises OSError (FileNotFoundError when missing). With
    `log_lines` (an anchor copy), the service's JSON log lines are read too: a line carrying
    a `checkpoint` is one, and lines that are neither are skipped."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            if not log_lines:
                problems.append(f"{what} line {n} is not a checkpoint")
            continue
        if log_lines and isinstance(raw, dict) and "mac" not in raw:
            if "checkpoint" not in raw:
                continue  # another log line
            raw = raw["checkpoint"]
        try:
            checkpoints.append(Checkpoint.parse(raw))
        except (ValueError, KeyError, TypeError):
            problems.append(f"{what} line {n} is not a checkpoint")
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
    # Checkpoints read from the off-host anchor copy (None: no copy configured).
    anchor_copy: int | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "problem": self.problem, "checkpoints": self.checkpoints,
                "latest": self.latest, "anchor_copy": self.anchor_copy}


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _local_store(settings, st: audit.State, recorded: Checkpoint | None, tampered: list[str], missing: list[str]
                 ) -> list[Checkpoint]:
    """The checkpoint file's checkpoints. Once the database records checkpoints written, a
    file that is missing, unreadable, shorter, or without the newest of them is tampering."""
    path = settings.audit_checkpoint_file
    written = st.checkpoints_written
    try:
        checkpoints, problems = read(path)
    except FileNotFoundError:
        if written:
            tampered.append(f"the checkpoint file {path} is missing, but {written} checkpoint(s) were written to it "
                            f"(the database records them): deleted or moved")
        return []
    except OSError as exc:
        (tampered if written else missing).append(f"the checkpoint file {path} cannot be read ({_why(exc)})")
        return []
    tampered.extend(problems)
    if len(checkpoints) < written:
        tampered.append(f"the checkpoint file {path} holds {len(checkpoints)} checkpoint(s), but {written} were "
                        f"written to it (the database records them): truncated or rewritten")
    elif recorded is not None and recorded not in checkpoints:
        tampered.append(f"the newest checkpoint written (at {recorded.at}) is not in the checkpoint file {path}: "
                        f"truncated or rewritten")
    return checkpoints


def _anchor_copy(path: str, tampered: list[str], missing: list[str]) -> list[Checkpoint] | None:
    try:
        checkpoints, problems = read(path, what="anchor copy", log_lines=True)
    except OSError as exc:
        missing.append(f"the anchor copy {path} cannot be read ({_why(exc)}): is it shipped and mounted here?")
        return None
    tampered.extend(problems)
    return checkpoints


def check(session: Session, settings, now: datetime, *, anchor_file: str | None = None
          ) -> tuple[audit.VerifyResult, AnchorResult]:
    """The keyed chain, and the chain against every checkpoint: the checkpoint file's, the
    newest one the database recorded, and the off-host anchor copy's (`anchor_file`, else
    AUDIT_ANCHOR_FILE). Reads only: the caller may (and `audit verify` does) hold a read-only
    transaction."""
    key = audit.key_for(session)
    st = audit.state(session)
    tampered: list[str] = []
    missing: list[str] = []
    recorded = None
    if st.last_checkpoint is not None:
        try:
            recorded = Checkpoint.parse(st.last_checkpoint)
        except (ValueError, KeyError, TypeError):
            tampered.append("the newest checkpoint recorded in the database is not a checkpoint")
    local = _local_store(settings, st, recorded, tampered, missing)
    anchor_path = anchor_file or settings.audit_anchor_file
    copy = _anchor_copy(anchor_path, tampered, missing) if anchor_path else None
    checkpoints = list(dict.fromkeys([*local, *([recorded] if recorded else []), *(copy or [])]))  # each once
    chain = audit.verify(session, want_ids={c.head_id for c in checkpoints})

    def result(status: AnchorStatus, problem: str | None) -> tuple[audit.VerifyResult, AnchorResult]:
        latest = max(checkpoints, key=lambda c: c.time, default=None)
        return chain, AnchorResult(status, problem, len(checkpoints), latest.to_dict() if latest else None,
                                   None if copy is None else len(copy))

    if tampered:
        return result(AnchorStatus.TAMPERED, tampered[0])
    for cp in sorted(checkpoints, key=lambda c: c.time):
        problem = _against_chain(cp, chain, key)
        if problem:
            return result(AnchorStatus.TAMPERED, problem)
    if missing:
        return result(AnchorStatus.MISSING, missing[0])
    max_age = timedelta(seconds=settings.audit_checkpoint_interval_seconds * settings.audit_checkpoint_stale_intervals)
    oldest = session.scalar(select(func.min(AuditEntry.at)))
    due = oldest is not None and now - oldest > max_age
    if not checkpoints:
        if due:
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
    if copy is not None:
        shipped = max((c.time for c in copy), default=None)
        if (shipped is None and due) or (shipped is not None and now - shipped > max_age):
            since = shipped.isoformat(timespec="seconds") if shipped else "never"
            return result(AnchorStatus.STALE, f"the anchor copy {anchor_path} holds no checkpoint newer than "
                                              f"{max_age.total_seconds():g} s (newest: {since}): is the shipping "
                                              f"running?")
    return result(AnchorStatus.ANCHORED, None)


def _against_chain(cp: Checkpoint, chain: audit.VerifyResult, key: AuditKey) -> str | None:
    if not cp.valid(key):
        return (f"the checkpoint of {cp.at} is not signed with this service's audit key (key id {key.key_id}): "
                f"forged, or a wrong key")
    if cp.head_id == 0:
        return None
    if cp.head_id in chain.found:
        position, head_hash = chain.found[cp.head_id]
        if head_hash != cp.head_hash:
            return f"entry {cp.head_id} differs from the checkpoint of {cp.at}: the log was rewritten from there on"
        if position != cp.count:
            return (f"the checkpoint of {cp.at} counted {cp.count} entries up to entry {cp.head_id}; the log now has "
                    f"{position}: entries were removed or inserted")
    elif chain.ok:
        if cp.head_id > chain.last_id:
            return (f"the checkpoint of {cp.at} anchored {cp.count} entries up to entry {cp.head_id}, but the log "
                    f"ends at entry {chain.last_id or 'none'}: entries were deleted from the end")
        return f"entry {cp.head_id}, anchored by the checkpoint of {cp.at}, is missing"
    return None


def any_checkpoint(settings, anchor_file: str | None = None) -> str | None:
    """Where a checkpoint of a keyed log exists (the checkpoint file, the anchor copy), or
    None: `audit rekey` is refused when one does."""
    for path, what, log_lines in ((settings.audit_checkpoint_file, "the checkpoint file", False),
                                  (anchor_file or settings.audit_anchor_file, "the anchor copy", True)):
        if not path:
            continue
        try:
            checkpoints, _ = read(path, log_lines=log_lines)
        except FileNotFoundError:
            continue
        if any(c.head_id for c in checkpoints):
            return f"{what} {path}"
    return None
