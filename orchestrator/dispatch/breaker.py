"""Circuit breakers: a provider that keeps failing is taken out of rotation for a while.

Closed → open after `threshold` consecutive failures; after `cooldown` seconds the breaker
is half-open and lets exactly ONE trial call through (the first caller to claim it); the
trial's success closes it, its failure opens it again for another cooldown. A trial whose
outcome never comes back (its worker died) frees the slot after one cooldown.

Where the state lives is a `BreakerStore`, chosen by the composition root (bootstrap):
- `LocalBreakerStore`: this process only. Without REDIS_URL every process has breakers of
  its own (README, "Scaling out").
- `RedisBreakerStore`: shared by every process using the same Redis; the half-open trial
  is a `SET NX` key, so one trial goes through across all of them.

Hand-written: breaker libraries (pybreaker, circuitbreaker) wrap calls in decorators and
count exceptions, while we decide per classified error (a permanent error is the
address's fault, not the provider's) and need the half-open trial claimed atomically
across processes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from redis.exceptions import RedisError

from .. import metrics

log = logging.getLogger("orchestrator.dispatch")


class BreakerState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


# BREAKER_STATE's value per state (metrics.py: "0 closed, 1 half-open, 2 open").
_GAUGE_CODES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


@dataclass(frozen=True)
class Snapshot:
    failures: int = 0
    opened_at: float | None = None


class BreakerStore(Protocol):
    def snapshot(self, name: str) -> Snapshot: ...
    def record_failure(self, name: str, threshold: int, now: float) -> Snapshot: ...
    def record_success(self, name: str) -> None: ...
    def claim_trial(self, name: str, ttl: float) -> bool: ...


class LocalBreakerStore:
    """Breaker state in this process (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._state: dict[str, Snapshot] = {}
        self._trials: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def snapshot(self, name: str) -> Snapshot:
        return self._state.get(name) or Snapshot()

    def record_failure(self, name: str, threshold: int, now: float) -> Snapshot:
        with self._lock:
            old = self._state.get(name) or Snapshot()
            failures = old.failures + 1
            opened = now if failures >= threshold or old.opened_at is not None else None
            self._state[name] = new = Snapshot(failures, opened)
            if opened is not None:
                self._trials.pop(name, None)
            return new

    def record_success(self, name: str) -> None:
        with self._lock:
            self._state.pop(name, None)
            self._trials.pop(name, None)

    def claim_trial(self, name: str, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            held_until = self._trials.get(name)
            if held_until is not None and held_until > now:
                return False
            self._trials[name] = now + ttl
            return True


class RedisBreakerStore:
    """Breaker state in Redis, shared by every process. Reads are cached for `read_ttl`
    seconds per process, so the send path does not ask Redis on every call; a failure
    always goes to Redis. If Redis cannot be reached, this process falls back to breakers
    of its own (a warning is logged) rather than let a breaker fail a send."""

    _FAILURE = """
    local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
    local opened = redis.call('HGET', KEYS[1], 'opened_at')
    if failures >= tonumber(ARGV[1]) or opened then
        redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
        redis.call('DEL', KEYS[2])
        opened = ARGV[2]
    end
    redis.call('EXPIRE', KEYS[1], ARGV[3])
    return {failures, opened or ''}
    """

    def __init__(self, client, *, prefix: str = "orchestrator:breaker:", read_ttl: float = 1.0,
                 expire_seconds: int = 86400) -> None:
        self._redis = client
        self._prefix = prefix
        self._read_ttl = read_ttl
        self._expire = expire_seconds
        self._cache: dict[str, tuple[float, Snapshot]] = {}
        self._failure = client.register_script(self._FAILURE)
        self._local = LocalBreakerStore()
        self._down_until = 0.0  # after an error, Redis is not asked again for REDIS_RETRY_SECONDS

    REDIS_RETRY_SECONDS = 5.0

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    def _unreachable(self, error: Exception) -> None:
        self._down_until = time.monotonic() + self.REDIS_RETRY_SECONDS
        log.warning("circuit breaker state: Redis unreachable (%s); using this process's own state",
                    type(error).__name__)

    def snapshot(self, name: str) -> Snapshot:
        hit = self._cache.get(name)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        if self._down():
            return self._local.snapshot(name)
        try:
            raw = self._redis.hgetall(self._key(name))
        except RedisError as error:
            self._unreachable(error)
            return self._local.snapshot(name)
        snap = Snapshot(int(raw.get(b"failures", 0)), float(raw[b"opened_at"]) if b"opened_at" in raw else None)
        self._cache[name] = (time.monotonic() + self._read_ttl, snap)
        return snap

    def record_failure(self, name: str, threshold: int, now: float) -> Snapshot:
        if self._down():
            return self._local.record_failure(name, threshold, now)
        try:
            failures, opened = self._failure(keys=[self._key(name), f"{self._key(name)}:trial"],
                                             args=[threshold, repr(now), self._expire])
        except RedisError as error:
            self._unreachable(error)
            return self._local.record_failure(name, threshold, now)
        snap = Snapshot(int(failures), float(opened) if opened else None)
        self._cache[name] = (time.monotonic() + self._read_ttl, snap)
        return snap

    def record_success(self, name: str) -> None:
        self._local.record_success(name)
        if self._down() or self.snapshot(name) == Snapshot():
            return  # nothing to reset (as far as this process saw within read_ttl)
        try:
            self._redis.delete(self._key(name), f"{self._key(name)}:trial")
        except RedisError as error:
            self._unreachable(error)
            return
        self._cache[name] = (time.monotonic() + self._read_ttl, Snapshot())

    def claim_trial(self, name: str, ttl: float) -> bool:
        if self._down():
            return self._local.claim_trial(name, ttl)
        try:
            return bool(self._redis.set(f"{self._key(name)}:trial", b"1", nx=True, px=max(int(ttl * 1000), 1)))
        except RedisError as error:
            self._unreachable(error)
            return self._local.claim_trial(name, ttl)


def make_store(redis_url: str | None) -> BreakerStore:
    if not redis_url:
        return LocalBreakerStore()
    import redis

    return RedisBreakerStore(redis.Redis.from_url(redis_url))


class CircuitBreaker:
    def __init__(self, name: str = "provider", store: BreakerStore | None = None, *, threshold: int = 5,
                 cooldown: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.store = store or LocalBreakerStore()
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock  # wall time: several processes compare it through a shared store

    @property
    def state(self) -> BreakerState:
        opened_at = self.store.snapshot(self.name).opened_at
        if opened_at is None:
            state = BreakerState.CLOSED
        elif self.clock() - opened_at >= self.cooldown:
            state = BreakerState.HALF_OPEN
        else:
            state = BreakerState.OPEN
        metrics.BREAKER_STATE.labels(self.name).set(_GAUGE_CODES[state])
        return state

    def seconds_until_trial(self) -> float:
        opened_at = self.store.snapshot(self.name).opened_at
        return 0.0 if opened_at is None else max(self.cooldown - (self.clock() - opened_at), 0.0)

    def allows(self) -> bool:
        """May a call go to this provider now? In the half-open state only the caller that
        claims the one trial gets True."""
        state = self.state
        if state == BreakerState.CLOSED:
            return True
        if state == BreakerState.OPEN:
            return False
        return self.store.claim_trial(self.name, self.cooldown)

    def record_success(self) -> None:
        self.store.record_success(self.name)
        metrics.BREAKER_STATE.labels(self.name).set(_GAUGE_CODES[BreakerState.CLOSED])

    def record_failure(self) -> None:
        snap = self.store.record_failure(self.name, self.threshold, self.clock())
        if snap.opened_at is not None:
            metrics.BREAKER_STATE.labels(self.name).set(_GAUGE_CODES[BreakerState.OPEN])
