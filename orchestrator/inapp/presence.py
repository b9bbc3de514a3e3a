"""Presence: is the user in the app right now? Two stores, one interface:
- database (embedded default): heartbeats update `recipients.last_heartbeat_at`; streams
  open in this process count as connected at once, and every open stream's user gets its
  heartbeat refreshed in one batched UPDATE per tick, so other processes sharing the
  database see the same answer within the policy's presence window;
- Redis (REDIS_URL set): heartbeats and live connections stay off the database; each open
  stream is a member of a per-user sorted set scored by its expiry, so a crashed process's
  connections age out instead of keeping the user "online". The database still gets
  `last_active_at` (lifecycle), at most every few minutes per user."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..recipients import recipients as recipient_service
from ..storage.models import Recipient

CONNECTION_TTL = timedelta(seconds=45)   # open streams are re-announced every REFRESH_EVERY
REFRESH_EVERY = timedelta(seconds=15)
DB_SYNC_INTERVAL = timedelta(minutes=5)
_CHUNK = 500


class _LocalConnections:
    """Streams open in this process, by user: the fastest 'connected' answer there is."""

    def __init__(self) -> None:
        self._by_user: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, user_id: str) -> None:
        with self._lock:
            self._by_user[user_id] += 1

    def remove(self, user_id: str) -> None:
        with self._lock:
            self._by_user[user_id] -= 1
            if self._by_user[user_id] <= 0:
                del self._by_user[user_id]

    def count(self, user_id: str) -> int:
        with self._lock:
            return self._by_user.get(user_id, 0)


def _heartbeat_many(session: Session, user_ids: list[str], now: datetime) -> None:
    for i in range(0, len(user_ids), _CHUNK):
        session.execute(update(Recipient).where(Recipient.user_id.in_(user_ids[i:i + _CHUNK]))
                        .values(last_heartbeat_at=now, last_active_at=now)
                        .execution_options(synchronize_session=False))


class DatabasePresence:
    kind = "database"

    def __init__(self) -> None:
        self.local = _LocalConnections()

    def touch(self, session: Session, user_id: str, now: datetime) -> None:
        recipient_service.heartbeat(session, user_id, now)

    def open_connection(self, session: Session, user_id: str, now: datetime) -> str:
        self.touch(session, user_id, now)
        self.local.add(user_id)
        return uuid.uuid4().hex

    def refresh_connections(self, session: Session, conns: Mapping[str, str], now: datetime) -> None:
        """`conns`: connection id -> user id of every stream open in this process."""
        _heartbeat_many(session, sorted(set(conns.values())), now)

    def close_connection(self, user_id: str, conn_id: str) -> None:
        self.local.remove(user_id)

    def connection_count(self, user_id: str, now: datetime) -> int:
        return self.local.count(user_id)

    def overlay(self, user_id: str, now: datetime) -> tuple[datetime | None, bool]:
        """(last heartbeat, connected) beyond what the database row says."""
        return None, self.local.count(user_id) > 0


class RedisPresence:
    kind = "redis"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.local = _LocalConnections()

    @staticmethod
    def _keys(user_id: str) -> tuple[str, str, str]:
        return (f"presence:beat:{user_id}", f"presence:conns:{user_id}", f"presence:dbsync:{user_id}")

    def touch(self, session: Session, user_id: str, now: datetime) -> None:
        beat, _, sync = self._keys(user_id)
        self.redis.set(beat, now.timestamp(), ex=int(timedelta(days=1).total_seconds()))
        # Lifecycle needs last_active_at in the database, but not at heartbeat frequency.
        if self.redis.set(sync, 1, nx=True, ex=int(DB_SYNC_INTERVAL.total_seconds())):
            recipient_service.heartbeat(session, user_id, now)

    def open_connection(self, session: Session, user_id: str, now: datetime) -> str:
        conn_id = uuid.uuid4().hex
        self.refresh_connections(session, {conn_id: user_id}, now)
        self.local.add(user_id)
        return conn_id

    def refresh_connections(self, session: Session, conns: Mapping[str, str], now: datetime) -> None:
        if not conns:
            return
        expires = (now + CONNECTION_TTL).timestamp()
        users = sorted(set(conns.values()))
        pipe = self.redis.pipeline(transaction=False)
        for conn_id, user_id in conns.items():
            _, key, _ = self._keys(user_id)
            pipe.zadd(key, {conn_id: expires})
        for user_id in users:
            beat, key, sync = self._keys(user_id)
            pipe.zremrangebyscore(key, "-inf", now.timestamp())
            pipe.expire(key, int(CONNECTION_TTL.total_seconds()) * 2)
            pipe.set(beat, now.timestamp(), ex=int(timedelta(days=1).total_seconds()))
            pipe.set(sync, 1, nx=True, ex=int(DB_SYNC_INTERVAL.total_seconds()))
        results = pipe.execute()
        synced = results[len(conns):][3::4]
        due = [u for u, fresh in zip(users, synced, strict=True) if fresh]
        for user_id in due:
            recipient_service.heartbeat(session, user_id, now)

    def close_connection(self, user_id: str, conn_id: str) -> None:
        self.local.remove(user_id)
        self.redis.zrem(self._keys(user_id)[1], conn_id)

    def connection_count(self, user_id: str, now: datetime) -> int:
        """Open streams of the user across every process."""
        return int(self.redis.zcount(self._keys(user_id)[1], now.timestamp(), "+inf"))

    def overlay(self, user_id: str, now: datetime) -> tuple[datetime | None, bool]:
        beat, conns, _ = self._keys(user_id)
        pipe = self.redis.pipeline()
        pipe.get(beat)
        pipe.zcount(conns, now.timestamp(), "+inf")
        raw, live = pipe.execute()
        last = datetime.fromtimestamp(float(raw), UTC) if raw else None
        return last, bool(live) or self.local.count(user_id) > 0


def make_presence(redis_url: str | None) -> DatabasePresence | RedisPresence:
    return RedisPresence(redis_url) if redis_url else DatabasePresence()
