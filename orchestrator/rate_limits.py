"""Rate limits per API key, with the `limits` library (the engine under Flask-Limiter,
maintained; thread-safe, so it works unchanged on a2wsgi's thread pool under uvicorn):
in memory in the embedded default, in Redis when REDIS_URL is set, so every API process of
a scaled-out deployment counts against the same budget.

Strategy: `limits` offers no token bucket; its sliding-window counter behaves like one for
clients — a steady `N` requests per minute, a burst never above `N`, no cliff at window
edges — at O(1) storage per key (two counters), which the moving window (one entry per
request) does not. Flask-Limiter itself is not used: it keys limits by route and request
attributes, we need one budget per API key known only once `require_scope` authenticated the
request, and it answers 429 in its own shape.

Every authenticated response carries `RateLimit-Limit`, `RateLimit-Remaining` and
`RateLimit-Reset` (seconds); past the limit the answer is our JSON 429 `rate_limited` with
`Retry-After`. The budget is the key's `rate_limit_per_minute`, else RATE_LIMIT_PER_MINUTE
(0: no limit). When Redis cannot be reached the request is let through without headers and a
warning is logged: a limiter outage must not stop sends."""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from flask import Flask, Response, current_app, g
from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from .errors import ApiError, ErrorCode

log = logging.getLogger("orchestrator.rate_limits")

EXTENSION = "orchestrator.rate_limiter"
NAMESPACE = "orchestrator-key"


EXPIRY_INTERVAL_SECONDS = 1.0


class _MemoryStorage(MemoryStorage):
    """`limits`' MemoryStorage with its expiry pass at most once a second. The stock one
    (limits 5.x) starts a fresh `threading.Timer` thread 10 ms ahead on every hit whose
    previous timer has finished: under load about a hundred threads started per second,
    a visible share of the accept path (bench/README.md). The pass only frees memory of
    expired counters (reads check expiry themselves), so a longer interval changes no
    answer. The hook is the library's private method (name-mangled), hence the guard."""

    def _MemoryStorage__schedule_expiry(self) -> None:  # overrides MemoryStorage.__schedule_expiry
        if not self.timer.is_alive():
            self.timer = threading.Timer(EXPIRY_INTERVAL_SECONDS, self._MemoryStorage__expire_events)
            self.timer.daemon = True
            self.timer.start()


_STORAGE = _MemoryStorage if hasattr(MemoryStorage, "_MemoryStorage__schedule_expiry") else MemoryStorage


@dataclass(frozen=True)
class Budget:
    limit: int
    remaining: int
    reset_seconds: int
    allowed: bool = True


class KeyRateLimiter:
    def __init__(self, default_per_minute: int, redis_url: str | None = None) -> None:
        self.default_per_minute = default_per_minute
        # Short timeouts: an unreachable Redis must cost a request a second at most (then fail open).
        self.storage: Storage = (storage_from_string(redis_url, socket_connect_timeout=1, socket_timeout=1)
                                 if redis_url else _STORAGE())
        self.kind = "redis" if redis_url else "memory"
        self.limiter = SlidingWindowCounterRateLimiter(self.storage)

    def per_minute(self, key_limit: int | None) -> int:
        return key_limit if key_limit else self.default_per_minute

    def hit(self, key_id: str, key_limit: int | None) -> Budget | None:
        """Counts one request against the key's budget; None when unlimited or the store is
        unreachable. `Budget.allowed` is False past the limit."""
        per_minute = self.per_minute(key_limit)
        if per_minute <= 0:
            return None
        item = RateLimitItemPerMinute(per_minute)
        try:
            allowed = self.limiter.hit(item, NAMESPACE, key_id)
            stats = self.limiter.get_window_stats(item, NAMESPACE, key_id)
        except Exception as exc:  # noqa: BLE001 - any storage failure: let the request through
            log.warning("rate limit store unavailable; request not counted",
                        extra={"store": self.kind, "error": type(exc).__name__})
            return None
        reset = max(1, math.ceil(stats.reset_time - time.time()))
        return Budget(per_minute, max(0, stats.remaining), reset, allowed)


def install(app: Flask, default_per_minute: int, redis_url: str | None) -> KeyRateLimiter:
    limiter = KeyRateLimiter(default_per_minute, redis_url)
    app.extensions[EXTENSION] = limiter
    app.after_request(_headers)
    return limiter


def enforce(key_id: str, key_limit: int | None) -> None:
    """Called by `require_scope` once the key is known: counts the request, keeps the budget
    for the response headers, raises the 429 past the limit."""
    limiter: KeyRateLimiter | None = current_app.extensions.get(EXTENSION)
    budget = limiter.hit(key_id, key_limit) if limiter is not None else None
    g.rate_budget = budget
    if budget is not None and not budget.allowed:
        raise ApiError(429, ErrorCode.RATE_LIMITED,
                       f"Authorization: this API key is limited to {budget.limit} requests per minute; "
                       f"retry after {budget.reset_seconds} s", field="Authorization",
                       headers={"Retry-After": str(budget.reset_seconds)})


def _headers(response: Response) -> Response:
    budget: Budget | None = g.get("rate_budget")
    if budget is not None:
        response.headers["RateLimit-Limit"] = str(budget.limit)
        response.headers["RateLimit-Remaining"] = str(budget.remaining)
        response.headers["RateLimit-Reset"] = str(budget.reset_seconds)
    return response
