"""Fixtures the multi-process ops tests share: a PostgreSQL schema of their own and a purged
Redis broker (each skips, or fails under the strict flag, when its service is not running)."""

from __future__ import annotations

import pytest

from tests.conftest import unavailable
from tests.ops.processes import BROKER_URL, SHARED_REDIS_URL, PgSchema, purge_broker


@pytest.fixture
def schema():
    try:
        pg = PgSchema()
    except Exception as exc:  # noqa: BLE001
        unavailable("PostgreSQL", str(exc).splitlines()[0])
    yield pg
    pg.drop()


@pytest.fixture
def broker() -> str:
    """The Redis broker (and the shared Redis the processes count in), emptied; its URL."""
    import redis

    try:
        for url in (BROKER_URL, SHARED_REDIS_URL):
            purge_broker(url)
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    return BROKER_URL
