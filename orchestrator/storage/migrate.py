"""`orchestrator db upgrade|current|history|downgrade`: Alembic migrations run programmatically against the engine
the service uses, so the embedded default creates its SQLite file on first start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from .db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(db: Database, stdout: TextIO | None = None) -> Config:
    # stdout read at call time: Alembic's default is the sys.stdout of import time.
    cfg = Config(stdout=stdout or sys.stdout)
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


# Any fixed number, the same in every process: the key of the migration advisory lock.
_PG_MIGRATION_LOCK = 0x6F726368  # "orch"


def upgrade(db: Database, revision: str = "head") -> None:
    """Migrates to `revision`. Processes starting together on a fresh PostgreSQL database
    (API, workers, scheduler) migrate one at a time under an advisory lock; the later ones
    find the schema at head and do nothing."""
    cfg = alembic_config(db)
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def revisions(db: Database) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision), changing nothing: for commands
    that must not migrate (`audit verify`)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(db)).get_current_head()
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        connection.rollback()
    return current, head


def _with_connection(db: Database, run, stdout: TextIO | None = None) -> None:
    cfg = alembic_config(db, stdout)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        run(cfg)


def current(db: Database, stdout: TextIO | None = None) -> None:
    """Print the database's revision (`<rev> (head)` when up to date; nothing when empty)."""
    _with_connection(db, lambda cfg: command.current(cfg, verbose=False), stdout)


def history(db: Database, stdout: TextIO | None = None) -> None:
    """Print every migration, newest first, marking the database's current one."""
    _with_connection(db, lambda cfg: command.history(cfg, indicate_current=True), stdout)


def downgrade(db: Database, revision: str, stdout: TextIO | None = None) -> None:
    """Revert to `revision` (an id, `-1`, or `base`)."""
    _with_connection(db, lambda cfg: command.downgrade(cfg, revision), stdout)
