"""Where the active routing policy comes from: the `policy_versions` table, seeded on first
start from the shipped default document (or POLICY_FILE). Compiled policies are cached by
version, so a decision costs no parsing."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import select

import policies
from policies import Policy

from ..domain.statuses import PolicyStatus
from ..storage.db import Database
from ..storage.models import PolicyVersion, utcnow
from . import audit

SYSTEM_ACTOR = "system"


class PolicyStore:
    def __init__(self, db: Database, seed_file: str | None = None) -> None:
        self.db = db
        self.seed_file = seed_file
        self._compiled: dict[str, Policy] = {}
        self._active_version: str | None = None
        self._lock = threading.Lock()

    def seed_text(self) -> str:
        path = Path(self.seed_file) if self.seed_file else Path(policies.CATEGORIES_DEFAULT_PATH)
        return path.read_text(encoding="utf-8")

    def ensure_seeded(self) -> None:
        """Activates the seed document when no policy is active yet (first start)."""
        with self.db.session() as session:
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

    def _compile(self, version: str, document: str) -> Policy:
        with self._lock:
            if version not in self._compiled:
                self._compiled[version] = policies.load_policy(document)
            return self._compiled[version]

    def active(self) -> Policy:
        if self._active_version is None:
            self.refresh()
        return self._compiled[self._active_version]

    def get(self, version: str) -> Policy:
        if version in self._compiled:
            return self._compiled[version]
        with self.db.session() as session:
            row = session.scalar(select(PolicyVersion).where(PolicyVersion.version == version))
            if row is None:
                raise LookupError(f"unknown policy version {version!r}")
            return self._compile(row.version, row.document)
