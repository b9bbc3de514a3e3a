"""Shared fixtures: a migrated database per test, on SQLite and on PostgreSQL.

PostgreSQL tests use the server at TEST_POSTGRES_URL (default 127.0.0.1:5432/test) in a
schema of their own, so parallel runs don't collide. Under CI (CI=true) an unreachable
server fails the run; elsewhere those tests skip with the reason shown."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from orchestrator.config import Settings
from orchestrator.storage.db import Database
from orchestrator.storage.migrate import upgrade
from orchestrator.storage.models import Attempt, Base
from providers.base import AttemptStatus

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
# One audit key for the service under test, the CLI in this process and worker subprocesses,
# as a deployment shares it (tests of the key file pass settings without it).
os.environ.setdefault("AUDIT_KEY", "test-audit-key-" + "0" * 32)


# `make test` runs the suite in two steps: everything else spread over two processes
# (pytest-xdist), then these modules in one, one after another (`-m serial`). They share state
# outside the test's own database (numbered Redis databases they empty, Redis pub/sub
# channels, RabbitMQ and Redis broker queues) or run real server and worker processes; the
# crash tests' workers were seen to take no task when run inside an xdist worker.
SERIAL_MODULES = frozenset({
    "tests/api/test_key_cache_sync.py", "tests/api/test_presence_redis.py", "tests/api/test_rate_limits.py",
    "tests/dispatch/test_breaker.py", "tests/dispatch/test_brokers.py", "tests/dispatch/test_crash.py",
    "tests/inapp/test_fanout_redis.py",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in SERIAL_MODULES or path.startswith("tests/ops/"):
            item.add_marker(pytest.mark.serial)


def unavailable(service: str, reason: str) -> None:
    """Fail loudly under CI, skip visibly elsewhere."""
    if IN_CI:
        pytest.fail(f"{service} is required under CI but unreachable: {reason}")
    pytest.skip(f"{service} unreachable: {reason}")


def require_redis(url: str, *, flush: bool = False) -> str:
    """`url` when its Redis answers (its database emptied if `flush`); else unavailable()."""
    import redis

    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2) as client:
            client.flushdb() if flush else client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    return url


CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def _chromium():
    """One headless Chromium per test process (launching it costs a second or two), with the
    event loop Playwright's sync API runs it on. Each test gets it through `browser`."""
    if not os.path.exists(CHROMIUM):
        unavailable("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable("Chromium", f"the playwright package is not installed: {exc}")
    manager = sync_playwright()
    p = manager.start()
    try:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 — any launch failure means no browser here
        p.stop()
        unavailable("Chromium", f"cannot launch {CHROMIUM}: {str(exc).splitlines()[0]}")
    loop = asyncio.get_running_loop()  # Playwright's: its sync calls leave it marked running
    asyncio._set_running_loop(None)
    yield b, loop
    asyncio._set_running_loop(loop)
    b.close()
    p.stop()


@pytest.fixture
def browser(_chromium):
    """Debian's Chromium, headless, through Playwright (no `playwright install`). Shared by the
    tests of one process; what a test opens (contexts, and pages with their own context) is
    closed after it, so each test starts from a browser with nothing open. Between browser
    tests the main thread has no running event loop (as without Playwright)."""
    b, loop = _chromium
    asyncio._set_running_loop(loop)
    before = set(b.contexts)
    try:
        yield b
    finally:
        for context in b.contexts:
            if context not in before:
                context.close()
        asyncio._set_running_loop(None)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("tpl") / "template.sqlite3"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return str(path)


@pytest.fixture(scope="session")
def pg_schema_url() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001
        yield f"unavailable:{type(exc).__name__}: {exc}".splitlines()[0]
        return
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "orchestrator.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    yield truncated_pg_url(request.getfixturevalue("pg_schema_url"))


def truncated_pg_url(pg_schema_url: str) -> str:
    """The session's PostgreSQL schema, emptied; fails under CI (skips elsewhere) without it.

    Emptied as TRUNCATE ... RESTART IDENTITY would leave it (no row, every sequence back to
    its start) but with DELETE, children first, and setval: a TRUNCATE gives each table new
    files, and every new connection then reloads their catalog entries, which made each
    PostgreSQL test's app a third of a second slower to start. Anything DELETE cannot empty
    falls back to the TRUNCATE."""
    if pg_schema_url.startswith("unavailable:"):
        unavailable("PostgreSQL", pg_schema_url.removeprefix("unavailable:"))
    db = Database(pg_schema_url)
    try:
        with db.engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(text("SELECT setval(format('%I', sequencename)::regclass, start_value, false) "
                              "FROM pg_sequences WHERE schemaname = current_schema()"))
    except DBAPIError:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with db.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()
    return pg_schema_url


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> datetime:
        from datetime import timedelta

        self.now = self.now + timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 3, 10, 12, 0, tzinfo=UTC))  # a Tuesday, midday UTC


@pytest.fixture
def settings_env(database_url, tmp_path) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": "memory://",
        "EMBEDDED_WORKER": "false",
        "ORCHESTRATOR_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
        "AUDIT_KEY": os.environ["AUDIT_KEY"],
    }


@pytest.fixture
def make_app(settings_env, clock):
    from orchestrator.app import create_app
    from orchestrator.app_state import EXTENSION_KEY

    apps = []

    def factory(**extra_env):
        settings = Settings.from_env({**settings_env, **{k: str(v) for k, v in extra_env.items()}})
        app = create_app(settings, migrate=False)
        app.extensions[EXTENSION_KEY].clock = clock
        apps.append(app)
        return app

    yield factory
    for app in apps:
        st = app.extensions[EXTENSION_KEY]
        st.dispatcher.stop()
        st.key_sync.close()
        st.db.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def state(app):
    from orchestrator.app_state import EXTENSION_KEY

    return app.extensions[EXTENSION_KEY]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_key(state):
    from orchestrator.access.auth import create_api_key

    def factory(scopes=("send", "read", "recipients", "inapp:tokens"), name="test"):
        with state.db.session() as session:
            _, plaintext = create_api_key(session, name, scopes)
        return {"Authorization": f"Bearer {plaintext}"}

    return factory


@pytest.fixture
def auth(make_key):
    return make_key()


def due_ids(state) -> list[str]:
    now = state.clock()
    with state.db.session() as s:
        return list(s.scalars(select(Attempt.id).where(
            Attempt.released.is_(True), Attempt.status == AttemptStatus.QUEUED, Attempt.due_at <= now)))


@pytest.fixture
def drain(state):
    """Runs the worker's task body for every due attempt until none is left: the same code
    Celery runs, without a broker in between (broker paths have their own tests)."""

    def run(max_rounds: int = 20) -> list[str]:
        outcomes = []
        for _ in range(max_rounds):
            state.dispatcher.sweep_once()
            ids = due_ids(state)
            if not ids:
                return outcomes
            outcomes += [state.dispatcher.deliver(i) for i in ids]
        raise AssertionError("attempts kept coming due")

    return run


# -- provider wire fakes (a test module points its `app` at the ones it uses) -----------------
TWILIO_SID, TWILIO_TOKEN = "AC" + "1" * 32, "twilio-test-token"


@pytest.fixture
def twilio():
    from tests.fakes.twilio_fake import TwilioFake

    with TwilioFake(TWILIO_SID, TWILIO_TOKEN) as fake:
        yield fake


@pytest.fixture
def smtp():
    from tests.fakes.smtp_fake import SMTPFake

    with SMTPFake() as fake:
        yield fake
