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


class ConfigError(Exception):
    """A misconfiguration, said in one line that names the variable and what to do. The CLI
    prints it as `orchestrator: error: <line>` and exits 2, without a traceback."""


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0,
         maximum: int | None = None) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {text!r}: set it like {name}={default}, "
                          f"or unset it for the default ({default})") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}: unset it for the default ({default})")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {text!r}: set it like {name}={default:g}, "
                          f"or unset it for the default ({default:g})") from None
    if not value >= minimum or value == float("inf"):  # `not >=` also catches NaN
        raise ConfigError(f"{name} must be a finite number of at least {minimum:g}, got {text!r}: "
                          f"unset it for the default ({default:g})")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, got {text!r}: unset it for INFO")
    return level
AUDIT_KEY_MIN_CHARS = 32


def _audit_key(env: Mapping[str, str]) -> str | None:
    value = env.get("AUDIT_KEY")
    if value is None or value == "":
        return None
    if len(value.strip()) < AUDIT_KEY_MIN_CHARS or value != value.strip():
        raise ConfigError(f"AUDIT_KEY must be at least {AUDIT_KEY_MIN_CHARS} characters with no surrounding "
                          f"spaces (got {len(value)}): generate one with `openssl rand -hex 32`, or unset it to "
                          f"use the key file (AUDIT_KEY_FILE)")
    return value


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.startswith(("http://", "https://")) or len(value) > 2000:
        raise ConfigError(f"{name} must be an http(s) URL, got {value[:60]!r}")
    return value


@dataclass(frozen=True)
class OidcSettings:
    """Review sign-in by OpenID Connect (orchestrator/review/oidc.py); None when not set up."""

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    # {group name in the ID token: [scopes it grants]}
    group_scopes: Mapping[str, tuple[str, ...]]
    provider_name: str = "single sign-on"
    groups_claim: str = "groups"
    request_scopes: str = "openid profile email"


def _oidc(env: Mapping[str, str]) -> OidcSettings | None:
    """REVIEW_OIDC_*: all of issuer, client id and group map, or none of them."""
    import json

    from .domain.statuses import Scope

    issuer = _http_url(env, "REVIEW_OIDC_ISSUER")
    client_id = (env.get("REVIEW_OIDC_CLIENT_ID") or "").strip()
    raw_map = (env.get("REVIEW_OIDC_GROUP_SCOPES") or "").strip()
    if not (issuer or client_id or raw_map):
        return None
    for name, value in (("REVIEW_OIDC_ISSUER", issuer), ("REVIEW_OIDC_CLIENT_ID", client_id),
                        ("REVIEW_OIDC_GROUP_SCOPES", raw_map)):
        if not value:
            raise ConfigError(f"{name} must be set too when any REVIEW_OIDC_* variable is: set REVIEW_OIDC_ISSUER, "
                              "REVIEW_OIDC_CLIENT_ID and REVIEW_OIDC_GROUP_SCOPES, or none of them")
    hint = ('set it like REVIEW_OIDC_GROUP_SCOPES=\'{"compliance": ["compliance:read"], '
            '"policy-leads": ["compliance:read", "policy:approve"]}\'')
    try:
        mapping = json.loads(raw_map)
    except ValueError:
        raise ConfigError(f"REVIEW_OIDC_GROUP_SCOPES must be a JSON object: {hint}") from None
    if not isinstance(mapping, dict) or not mapping:
        raise ConfigError(f"REVIEW_OIDC_GROUP_SCOPES must be a non-empty JSON object: {hint}")
    valid = ", ".join(s.value for s in Scope)
    group_scopes: dict[str, tuple[str, ...]] = {}
    for group, scopes in mapping.items():
        if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
            raise ConfigError(f"REVIEW_OIDC_GROUP_SCOPES: group {group!r} must map to a non-empty list of scopes: "
                              f"{hint}")
        unknown = [s for s in scopes if s not in Scope._value2member_map_]
        if unknown:
            raise ConfigError(f"REVIEW_OIDC_GROUP_SCOPES: group {group!r} has unknown scope(s) "
                              f"{', '.join(unknown)}; valid scopes: {valid}")
        group_scopes[group] = tuple(scopes)
    return OidcSettings(
        issuer=issuer.rstrip("/"), client_id=client_id,
        client_secret=env.get("REVIEW_OIDC_CLIENT_SECRET") or "", group_scopes=group_scopes,
        provider_name=(env.get("REVIEW_OIDC_PROVIDER_NAME") or "").strip() or "single sign-on",
        groups_claim=(env.get("REVIEW_OIDC_GROUPS_CLAIM") or "").strip() or "groups",
        # "openid" always: without it there is no ID token (and no nonce) to check.
        request_scopes=" ".join(dict.fromkeys(["openid", *(env.get("REVIEW_OIDC_REQUEST_SCOPES") or
                                                            "profile email").split()])),
    )


def redact_url(url: str) -> str:
    """A database or broker URL fit for a log line: the password replaced by `***`."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rpartition("@")
        user = (parts.username or "")
        return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))
    except ValueError:
        return url.rpartition("@")[2]


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
    review_oidc: OidcSettings | None = None
    metrics_token: str | None = None
    metrics_port: int = 0
    # The audit chain's key and its checkpoints (audit/key.py, audit_checkpoints.py).
    audit_key: str | None = field(default=None, repr=False)
    audit_key_file: str = f"{DEFAULT_DATA_DIR}/audit.key"
    audit_checkpoint_file: str = f"{DEFAULT_DATA_DIR}/audit-checkpoints.jsonl"
    audit_checkpoint_interval_seconds: float = 3600.0
    audit_checkpoint_stale_intervals: int = 3
    audit_checkpoint_webhook_url: str | None = None
    # A copy of the checkpoints kept where the database's writer cannot rewrite it (shipped
    # off the host); `audit verify` checks the log against it too.
    audit_anchor_file: str | None = None
    schedule_max_ahead_seconds: int = 90 * 86400
    rate_limit_per_minute: int = 1200
    # ORCHESTRATOR_DATA_DIR: where files the service creates itself live by default.
    data_dir: str = DEFAULT_DATA_DIR
    # SECRET_KEY signs review sessions, encrypts unsubscribe links and signs acknowledgement
    # links; every process of a deployment must share it. Unset (or blank), each consumer
    # falls back on its own, as before this was a field: review sessions (review/session.py)
    # and unsubscribe links (recipients/unsubscribe.py) use a random per-process key and log a
    # warning (sessions end and links stop working at restart); acknowledgement links
    # (sending/ack_links.py) use a random key created once in `data_dir` (ack-link.key),
    # silently, so they survive restarts of processes sharing that directory.
    secret_key: str | None = field(default=None, repr=False)
    env: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """A variable set but blank means its default, as when unset (compose files pass
        `VAR: ${VAR:-}` through)."""
        env = dict(os.environ if env is None else env)
        data_dir = env.get("ORCHESTRATOR_DATA_DIR") or DEFAULT_DATA_DIR
        broker = env.get("CELERY_BROKER_URL") or "memory://"
        return cls(
            database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir}/orchestrator.sqlite3",
            broker_url=broker,
            # With the in-memory broker the worker must live in the web process: nothing
            # else can read that queue.
            embedded_worker=_bool(env.get("EMBEDDED_WORKER"), broker.startswith("memory://")),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", 4, minimum=1),
            host=env.get("HOST") or "127.0.0.1",
            port=_int(env, "PORT", 8000, minimum=1, maximum=65535),
            public_base_url=env.get("PUBLIC_BASE_URL", "").rstrip("/"),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", 256 * 1024, minimum=1),
            max_content_chars=_int(env, "MAX_CONTENT_CHARS", 20000, minimum=1),
            sweep_interval_seconds=_float(env, "SWEEP_INTERVAL_SECONDS", 2),
            lease_seconds=_int(env, "LEASE_SECONDS", 60, minimum=1),
            policy_file=env.get("POLICY_FILE") or None,
            sandbox_sink=env.get("SANDBOX_SINK") or f"{data_dir}/sandbox-sends.jsonl",
            redis_url=env.get("REDIS_URL") or None,
            log_level=_log_level(env.get("LOG_LEVEL") or "INFO"),
            attempt_deadline_seconds=_int(env, "ATTEMPT_DEADLINE_SECONDS", 600, minimum=1),
            in_app_token_ttl_seconds=_int(env, "IN_APP_TOKEN_TTL_SECONDS", 86400, minimum=1),
            streams_per_token=_int(env, "STREAMS_PER_TOKEN", 3),
            streams_per_user=_int(env, "STREAMS_PER_USER", 10),
            max_streams=_int(env, "MAX_STREAMS", 10000),
            stream_keepalive_seconds=_float(env, "STREAM_KEEPALIVE_SECONDS", 15),
            # Origins whose pages may call the in-app client routes (CORS); `*` allows any.
            inapp_cors_origins=tuple(o.strip().rstrip("/") for o in env.get("INAPP_CORS_ORIGINS", "").split(",")
                                     if o.strip()),
            web_threads=_int(env, "WEB_THREADS", 16, minimum=1),
            # How long an API key lookup is reused: a revoked key stops working within this.
            key_cache_seconds=_float(env, "KEY_CACHE_SECONDS", 5),
            # Link schemes besides https that content.action_url may use (app deep links).
            action_url_schemes=tuple(s.strip().lower() for s in env.get("ACTION_URL_SCHEMES", "").split(",")
                                     if s.strip() and s.strip().lower() not in {"javascript", "data", "vbscript"}),
            # Receipts for unknown provider ids kept (parked) at most, and for how long.
            parked_receipts_max=_int(env, "PARKED_RECEIPTS_MAX", 10000),
            parked_receipts_max_age_seconds=_float(env, "PARKED_RECEIPTS_MAX_AGE_SECONDS", 7 * 86400),
            review_session_max_age_seconds=_float(env, "REVIEW_SESSION_MAX_AGE_SECONDS", 12 * 3600),
            # Review sign-in by OpenID Connect when the organisation has single sign-on.
            review_oidc=_oidc(env),
            # When set, /metrics answers only requests with "Authorization: Bearer <token>".
            metrics_token=env.get("METRICS_TOKEN") or None,
            # `orchestrator worker` and `scheduler` serve their metrics on this port (0: off).
            metrics_port=_int(env, "METRICS_PORT", 0, maximum=65535),
            audit_key=_audit_key(env),
            audit_key_file=env.get("AUDIT_KEY_FILE") or f"{data_dir}/audit.key",
            audit_checkpoint_file=env.get("AUDIT_CHECKPOINT_FILE") or f"{data_dir}/audit-checkpoints.jsonl",
            audit_checkpoint_interval_seconds=_float(env, "AUDIT_CHECKPOINT_INTERVAL_SECONDS", 3600, minimum=1),
            audit_checkpoint_stale_intervals=_int(env, "AUDIT_CHECKPOINT_STALE_INTERVALS", 3, minimum=1),
            audit_checkpoint_webhook_url=_http_url(env, "AUDIT_CHECKPOINT_WEBHOOK_URL"),
            audit_anchor_file=(env.get("AUDIT_ANCHOR_FILE") or "").strip() or None,
            # How far ahead send_at may be (default 90 days).
            schedule_max_ahead_seconds=_int(env, "SCHEDULE_MAX_AHEAD_SECONDS", 90 * 86400, minimum=60),
            # Requests per minute per API key unless the key has its own (0: unlimited).
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 1200),
            data_dir=data_dir,
            secret_key=env.get("SECRET_KEY") or None,
            env=env,
        )
