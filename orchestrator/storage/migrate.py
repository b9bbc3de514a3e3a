"""`orchestrator db upgrade`: Alembic migrations run programmatically against the engine
the service uses, so the embedded default creates its SQLite file on first start."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from .db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    cfg = alembic_config(db)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
