"""Configuration from environment variables. Every variable is listed in README.md with its
default; `Settings.from_env` is the one place that reads them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEFAULT_DATA_DIR = "var"


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    embedded_worker: bool
    worker_concurrency: int
    host: str
    port: int
    public_base_url: str
    max_body_bytes: int
    max_content_chars: int
    sweep_interval_seconds: float
    lease_seconds: int
    policy_file: str | None
    sandbox_sink: str
    redis_url: str | None
    log_level: str
    attempt_deadline_seconds: int
    in_app_token_ttl_seconds: int
    streams_per_token: int
    streams_per_user: int
    max_streams: int
    stream_keepalive_seconds: float
    inapp_cors_origins: tuple[str, ...]
    web_threads: int
    key_cache_seconds: float
    action_url_schemes: tuple[str, ...] = ()
    parked_receipts_max: int = 10_000
    parked_receipts_max_age_seconds: float = 7 * 86400
    review_session_max_age_seconds: float = 12 * 3600
    metrics_token: str | None = None
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        data_dir = env.get("ORCHESTRATOR_DATA_DIR", DEFAULT_DATA_DIR)
        broker = env.get("CELERY_BROKER_URL", "memory://")
        return cls(
            database_url=env.get("DATABASE_URL", f"sqlite:///{data_dir}/orchestrator.sqlite3"),
            broker_url=broker,
            # With the in-memory broker the worker must live in the web process: nothing
            # else can read that queue.
            embedded_worker=_bool(env.get("EMBEDDED_WORKER"), broker.startswith("memory://")),
            worker_concurrency=int(env.get("WORKER_CONCURRENCY", "4")),
            host=env.get("HOST", "127.0.0.1"),
            port=int(env.get("PORT", "8000")),
            public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
            max_body_bytes=int(env.get("MAX_BODY_BYTES", str(256 * 1024))),
            max_content_chars=int(env.get("MAX_CONTENT_CHARS", "20000")),
            sweep_interval_seconds=float(env.get("SWEEP_INTERVAL_SECONDS", "2")),
            lease_seconds=int(env.get("LEASE_SECONDS", "60")),
            policy_file=env.get("POLICY_FILE") or None,
            sandbox_sink=env.get("SANDBOX_SINK", f"{data_dir}/sandbox-sends.jsonl"),
            redis_url=env.get("REDIS_URL") or None,
            log_level=env.get("LOG_LEVEL", "INFO"),
            attempt_deadline_seconds=int(env.get("ATTEMPT_DEADLINE_SECONDS", "600")),
            in_app_token_ttl_seconds=int(env.get("IN_APP_TOKEN_TTL_SECONDS", "86400")),
            streams_per_token=int(env.get("STREAMS_PER_TOKEN", "3")),
            streams_per_user=int(env.get("STREAMS_PER_USER", "10")),
            max_streams=int(env.get("MAX_STREAMS", "10000")),
            stream_keepalive_seconds=float(env.get("STREAM_KEEPALIVE_SECONDS", "15")),
            # Origins whose pages may call the in-app client routes (CORS); `*` allows any.
            inapp_cors_origins=tuple(o.strip().rstrip("/") for o in env.get("INAPP_CORS_ORIGINS", "").split(",")
                                     if o.strip()),
            web_threads=int(env.get("WEB_THREADS", "16")),
            # How long an API key lookup is reused: a revoked key stops working within this.
            key_cache_seconds=float(env.get("KEY_CACHE_SECONDS", "5")),
            # Link schemes besides https that content.action_url may use (app deep links).
            action_url_schemes=tuple(s.strip().lower() for s in env.get("ACTION_URL_SCHEMES", "").split(",")
                                     if s.strip() and s.strip().lower() not in {"javascript", "data", "vbscript"}),
            # Receipts for unknown provider ids kept (parked) at most, and for how long.
            parked_receipts_max=int(env.get("PARKED_RECEIPTS_MAX", "10000")),
            parked_receipts_max_age_seconds=float(env.get("PARKED_RECEIPTS_MAX_AGE_SECONDS", str(7 * 86400))),
            review_session_max_age_seconds=float(env.get("REVIEW_SESSION_MAX_AGE_SECONDS", str(12 * 3600))),
            # When set, /metrics answers only requests with "Authorization: Bearer <token>".
            metrics_token=env.get("METRICS_TOKEN") or None,
            env=env,
        )
