"""Presence: is the user in the app right now? Two stores, one interface:
- database (embedded default): heartbeats update `recipients.last_heartbeat_at`; an open
  stream refreshes it, so every API process sees the same answer;
- Redis (REDIS_URL set): heartbeats and live connections stay off the database; each open
  stream is a member of a per-user sorted set scored by its expiry, so a crashed process's
  connections age out instead of keeping the user "online". The database still gets
  `last_active_at` (lifecycle), at most every few minutes per user."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from ..services import recipients as recipient_service

CONNECTION_TTL = timedelta(seconds=45)   # a stream re-announces itself every 15 s
DB_SYNC_INTERVAL = timedelta(minutes=5)


class DatabasePresence:
    kind = "database"

    def touch(self, session: Session, user_id: str, now: datetime) -> None:
        recipient_service.heartbeat(session, user_id, now)

    def open_connection(self, session: Session, user_id: str, now: datetime) -> str:
        self.touch(session, user_id, now)
        return uuid.uuid4().hex

    def refresh_connection(self, session: Session, user_id: str, conn_id: str, now: datetime) -> None:
        self.touch(session, user_id, now)

    def close_connection(self, user_id: str, conn_id: str) -> None:
        """Nothing to undo: the heartbeat simply ages past the policy's window."""

    def overlay(self, user_id: str, now: datetime) -> tuple[datetime | None, bool]:
        """(last heartbeat, connected) beyond what the database row says: nothing here."""
        return None, False


class RedisPresence:
    kind = "redis"

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

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
        self.refresh_connection(session, user_id, conn_id, now)
        return conn_id

    def refresh_connection(self, session: Session, user_id: str, conn_id: str, now: datetime) -> None:
        _, conns, _ = self._keys(user_id)
        expires = (now + CONNECTION_TTL).timestamp()
        pipe = self.redis.pipeline()
        pipe.zadd(conns, {conn_id: expires})
        pipe.zremrangebyscore(conns, "-inf", now.timestamp())
        pipe.expire(conns, int(CONNECTION_TTL.total_seconds()) * 2)
        pipe.execute()
        self.touch(session, user_id, now)

    def close_connection(self, user_id: str, conn_id: str) -> None:
        self.redis.zrem(self._keys(user_id)[1], conn_id)

    def overlay(self, user_id: str, now: datetime) -> tuple[datetime | None, bool]:
        beat, conns, _ = self._keys(user_id)
        pipe = self.redis.pipeline()
        pipe.get(beat)
        pipe.zcount(conns, now.timestamp(), "+inf")
        raw, live = pipe.execute()
        last = datetime.fromtimestamp(float(raw), UTC) if raw else None
        return last, bool(live)


def make_presence(redis_url: str | None) -> DatabasePresence | RedisPresence:
    return RedisPresence(redis_url) if redis_url else DatabasePresence()
