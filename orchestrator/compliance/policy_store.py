"""Where the active routing policy comes from: the `policy_versions` table, seeded on first
start from the shipped default document (or POLICY_FILE). Compiled policies are cached by
version, so a decision costs no parsing. Activation (compliance.policy_versions) calls
refresh() in its own process; other processes (more server processes, Celery workers) pick
the new active version up within REFRESH_SECONDS."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

import policies
from policies import Policy

from ..audit import log as audit
from ..domain.statuses import PolicyStatus
from ..storage.db import Database
from ..storage.models import PolicyVersion, utcnow

SYSTEM_ACTOR = "system"
REFRESH_SECONDS = 5.0


class PolicyStore:
    def __init__(self, db: Database, seed_file: str | None = None,
                 refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.db = db
        self.seed_file = seed_file
        self.refresh_seconds = refresh_seconds
        self._compiled: dict[str, Policy] = {}
        self._sources: dict[str, str] = {}
        self._active_version: str | None = None
        self._refreshed_at = 0.0
        self._lock = threading.Lock()

    def seed_text(self) -> str:
        path = Path(self.seed_file) if self.seed_file else Path(policies.CATEGORIES_DEFAULT_PATH)
        return path.read_text(encoding="utf-8")

    def ensure_seeded(self) -> None:
        """Activates the seed document when no policy is active yet (first start)."""
        with self.db.session() as session:
            # Processes starting together on a fresh database (worker, scheduler, API) seed
            # one at a time: the others then find the active policy.
            audit.lock(session)
            if session.scalar(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.ACTIVE)):
                return
            text = self.seed_text()
            policy = policies.load_policy(text)
            existing = session.scalar(select(PolicyVersion).where(PolicyVersion.version == policy.version))
            now = utcnow()
            if existing is None:
                session.add(PolicyVersion(
                    version=policy.version, document=text, status=PolicyStatus.ACTIVE,
                    author=SYSTEM_ACTOR, approved_by=SYSTEM_ACTOR, approved_at=now, activated_at=now,
                ))
            else:
                existing.status = PolicyStatus.ACTIVE
                existing.activated_at = now
            audit.append(session, actor=SYSTEM_ACTOR, action=audit.AuditAction.POLICY_SEED,
                         subject=f"policy:{policy.version}", now=now,
                         detail={"version": policy.version, "source": self.seed_file or "shipped default"},
                         reason="first start: no active policy")
        self.refresh()

    def refresh(self) -> None:
        with self.db.session() as session:
            row = session.scalar(select(PolicyVersion).where(PolicyVersion.status == PolicyStatus.ACTIVE))
            if row is None:
                raise LookupError("no active policy: run `orchestrator db upgrade` and start the service once")
            self._compile(row.version, row.document)
            self._active_version = row.version
            self._refreshed_at = time.monotonic()

    def _compile(self, version: str, document: str) -> Policy:
        with self._lock:
            # A draft's text can change under the same version until it is approved: recompile then.
            if version not in self._compiled or self._sources.get(version) != document:
                self._compiled[version] = policies.load_policy(document)
                self._sources[version] = document
            return self._compiled[version]

    def active(self) -> Policy:
        if self._active_version is None:
            self.refresh()
        elif time.monotonic() - self._refreshed_at > self.refresh_seconds:
            try:
                self.refresh()
            except (SQLAlchemyError, LookupError):
                self._refreshed_at = time.monotonic()  # keep routing with the cached version; retry later
        return self._compiled[self._active_version]

    def get(self, version: str) -> Policy:
        """A stored version, compiled (cached). Only approved/active/retired versions are
        immutable; for a draft, compile its current text (policy_versions.compile_row)."""
        if version in self._compiled:
            return self._compiled[version]
        with self.db.session() as session:
            row = session.scalar(select(PolicyVersion).where(PolicyVersion.version == version))
            if row is None:
                raise LookupError(f"unknown policy version {version!r}")
            return self._compile(row.version, row.document)
