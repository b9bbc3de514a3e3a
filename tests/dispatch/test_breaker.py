"""The circuit breaker: half-open lets exactly one trial through, from any number of
threads, and — with Redis — from any number of processes sharing it."""

from __future__ import annotations

import threading
import uuid

import pytest

from orchestrator.dispatch.breaker import CircuitBreaker, LocalBreakerStore, RedisBreakerStore
from tests.conftest import unavailable

REDIS_URL = "redis://127.0.0.1:6379/15"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def race(breakers: list[CircuitBreaker], threads: int = 24) -> int:
    """`threads` callers ask at once (spread over the breakers); returns how many were let through."""
    barrier = threading.Barrier(threads)
    allowed: list[bool] = []
    lock = threading.Lock()

    def ask(breaker: CircuitBreaker) -> None:
        barrier.wait()
        result = breaker.allows()
        with lock:
            allowed.append(result)

    workers = [threading.Thread(target=ask, args=(breakers[i % len(breakers)],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(10)
    assert len(allowed) == threads
    return sum(allowed)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.threshold):
        breaker.record_failure()


def test_closed_lets_everyone_through_and_opens_after_the_threshold():
    clock = Clock()
    breaker = CircuitBreaker("p", LocalBreakerStore(), threshold=3, cooldown=30, clock=clock)
    assert race([breaker]) == 24
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and race([breaker]) == 0


def test_half_open_lets_exactly_one_trial_through_among_threads():
    clock = Clock()
    breaker = CircuitBreaker("p", LocalBreakerStore(clock), threshold=2, cooldown=30, clock=clock)
    open_breaker(breaker)
    clock.now += 31
    assert breaker.state == "half_open"
    assert race([breaker]) == 1


def test_the_trial_outcome_closes_or_reopens():
    clock = Clock()
    breaker = CircuitBreaker("p", LocalBreakerStore(clock), threshold=2, cooldown=30, clock=clock)
    open_breaker(breaker)
    clock.now += 31
    assert breaker.allows()
    breaker.record_failure()  # the trial failed: open for another cooldown
    assert breaker.state == "open" and not breaker.allows()
    clock.now += 31
    assert breaker.allows() and not breaker.allows()
    breaker.record_success()
    assert breaker.state == "closed" and race([breaker]) == 24


def test_a_trial_that_never_reports_frees_the_slot_after_a_cooldown():
    clock = Clock()
    store = LocalBreakerStore(clock)
    breaker = CircuitBreaker("p", store, threshold=1, cooldown=30, clock=clock)
    open_breaker(breaker)
    clock.now += 31
    assert breaker.allows() and not breaker.allows()
    clock.now += 31  # the trial's worker died: another may try
    assert breaker.allows()


@pytest.fixture
def redis_client():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", str(exc))
    yield client
    client.close()


@pytest.mark.redis
def test_with_redis_processes_share_the_state_and_the_one_trial(redis_client):
    """Two stores with their own clients stand for two processes."""
    prefix = f"test:breaker:{uuid.uuid4().hex}:"
    clock = Clock()
    a = CircuitBreaker("twilio", RedisBreakerStore(redis_client, prefix=prefix, read_ttl=0), threshold=3,
                       cooldown=30, clock=clock)
    other = type(redis_client).from_url(REDIS_URL)
    b = CircuitBreaker("twilio", RedisBreakerStore(other, prefix=prefix, read_ttl=0), threshold=3,
                       cooldown=30, clock=clock)
    try:
        a.record_failure()
        b.record_failure()
        assert a.state == b.state == "closed"
        b.record_failure()  # the third consecutive failure, counted across both
        assert a.state == "open" and not a.allows()
        clock.now += 31
        assert race([a, b]) == 1
        a.record_success()
        assert b.state == "closed" and b.allows()
    finally:
        redis_client.delete(*redis_client.keys(f"{prefix}*") or [f"{prefix}none"])
        other.close()


def test_an_unreachable_redis_falls_back_to_this_process_state():
    """A breaker must never fail a send: with Redis gone, the process keeps breakers of its own."""
    import redis

    from tests.ops.processes import free_port

    clock = Clock()
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)  # nothing listens
    breaker = CircuitBreaker("p", RedisBreakerStore(client, read_ttl=0), threshold=2, cooldown=30, clock=clock)
    assert breaker.allows()
    open_breaker(breaker)
    assert breaker.state == "open" and not breaker.allows()
    clock.now += 31
    assert breaker.allows()
    breaker.record_success()
    assert breaker.state == "closed"
