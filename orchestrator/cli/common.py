"""What several command groups share: the migrated database with its audit key, and the
word to running servers that an API key changed."""

from __future__ import annotations

import click

from ..config import Settings


def announce_key_change(key_id: str) -> None:
    """Tells running servers, through Redis, to drop their cached copy of the key (this
    process is not one of them: it only publishes). Says on stderr when it could not."""
    from ..access.key_sync import KeyCacheSync

    settings = Settings.from_env()
    if KeyCacheSync(None, settings.redis_url).changed(key_id):
        return
    why = "Redis is unreachable" if settings.redis_url else "REDIS_URL is not set"
    click.echo(f"{why}: running servers apply this within KEY_CACHE_SECONDS ({settings.key_cache_seconds:g} s)",
               err=True)


def database():
    from ..audit.log import install_audit_key
    from ..storage.db import Database
    from ..storage.migrate import upgrade

    settings = Settings.from_env()
    database = Database(settings.database_url)
    upgrade(database)
    install_audit_key(settings, database)
    return database
