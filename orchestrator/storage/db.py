"""Engine and session factory. SQLite gets WAL, a busy timeout and synchronous=NORMAL, and
one connection per thread; PostgreSQL goes through psycopg 3."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    # Operators paste `postgres://` or `postgresql://`; we ship psycopg 3, not psycopg2.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        engine = create_engine(
            url,
            hide_parameters=True,  # SQL errors in logs must not carry addresses or bodies
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=10,
            max_overflow=20,
            json_serializer=_json_dumps, json_deserializer=orjson.loads,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            # pysqlite's own transaction handling defers BEGIN; we issue BEGIN IMMEDIATE for
            # claims elsewhere, so let SQLAlchemy manage transactions explicitly.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        _serialise_writers(engine)
        _reset_read_only(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True,
                         json_serializer=_json_dumps, json_deserializer=orjson.loads)


def _json_dumps(value) -> str:
    # orjson: the route and decision facts of every message are JSON columns, written on the
    # accept path; the stdlib encoder was a visible share of its time.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_HOLDS = "orchestrator_write_lock"


def _serialise_writers(engine: Engine) -> None:
    """SQLite lets one writer in at a time; the others wait in its busy handler, which
    polls with sleeps growing to 100 ms. With 16 request threads and a worker pool that
    polling, not the work, set the pace (measured: 275 accepted/s with 16 threads, 527 with
    4). So in this process writers queue on a lock instead, from a transaction's first
    write to its commit or rollback; reads never wait for it. Other processes (the CLI)
    still meet SQLite's own busy timeout. Hand-written because no library does this for
    SQLAlchemy's pool."""
    lock = threading.RLock()

    @event.listens_for(engine, "before_cursor_execute")
    def _acquire(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if _HOLDS not in conn.info and statement.lstrip()[:7].upper().startswith(_WRITES):
            lock.acquire()
            conn.info[_HOLDS] = True

    def _release(conn) -> None:  # noqa: ANN001
        if conn.info.pop(_HOLDS, None):
            lock.release()

    event.listen(engine, "commit", _release)
    event.listen(engine, "rollback", _release)

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn, record):  # noqa: ANN001 - a connection returned mid-transaction
        if record.info.pop(_HOLDS, None):
            lock.release()


_READ_ONLY = "orchestrator_read_only"


def _reset_read_only(engine: Engine) -> None:
    """A SQLite connection made read-only for one session (Database.read_only_session) is
    made writable again before any other session can check it out of the pool."""

    @event.listens_for(engine, "checkin")
    def _checkin(dbapi_conn, record):  # noqa: ANN001
        if record.info.pop(_READ_ONLY, None):
            dbapi_conn.execute("PRAGMA query_only = OFF")


AFTER_COMMIT = "after_commit"
ANNOUNCE = "announce"
ANNOUNCE_CALLBACKS = "announce_callbacks"


def after_commit(session: Session, hook) -> None:
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def announce(session: Session, attempt_ids: list[str]) -> None:
    """Work to wake a worker for once this unit of work commits. The caller has set the
    attempts' `enqueued_at` in the same transaction (so the sweeper gives the wake-up its
    grace period); if the commit fails nothing is announced, and if the process dies after
    the commit the sweeper announces it instead."""
    if attempt_ids:
        session.info.setdefault(ANNOUNCE, []).extend(attempt_ids)


def announce_callback(session: Session, callback_id: int) -> None:
    """A status callback to post once this unit of work commits (the sweeper posts it if
    the commit's announcement is lost)."""
    session.info.setdefault(ANNOUNCE_CALLBACKS, []).append(callback_id)


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        # Called with the attempt ids a committed unit of work announced (the dispatcher's
        # wake-up); set by the composition root.
        self.announcer = None
        # Called with each status callback id a committed unit of work recorded (posted by
        # the dispatcher); set by the composition root like `announcer`.
        self.callback_announcer = None

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on error. Callables appended to
        `session.info["after_commit"]` run once the commit succeeded — how work is announced
        to the broker only after it is durable."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            hooks = session.info.pop(AFTER_COMMIT, [])
            announced = session.info.pop(ANNOUNCE, [])
            callbacks = session.info.pop(ANNOUNCE_CALLBACKS, [])
            committed = not session.in_transaction()
            session.close()
        if committed:
            if announced and self.announcer is not None:
                self.announcer(list(dict.fromkeys(announced)))
            if self.callback_announcer is not None:
                for callback_id in callbacks:
                    self.callback_announcer(callback_id)
            for hook in hooks:
                hook()

    @contextmanager
    def read_only_session(self) -> Iterator[Session]:
        """A session whose transaction the database itself refuses to write in (PostgreSQL:
        SET TRANSACTION READ ONLY; SQLite: PRAGMA query_only, undone when the connection goes
        back to the pool), rolled back at the end: for checks that must change nothing
        (`audit verify`)."""
        session = self.session_factory()
        try:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            else:
                connection.info[_READ_ONLY] = True
                connection.exec_driver_sql("PRAGMA query_only = ON")
            yield session
        finally:
            session.rollback()
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
