"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from ..app_state import state
from ..errors import ApiError, ErrorCode
from ..metrics import exposition
from .declare import Auth, Media, declare
from .models import Health, Readiness

bp = Blueprint("health", __name__)

BROKER_CHECK_TIMEOUT_SECONDS = 1.0


def broker_check(url: str, timeout: float = BROKER_CHECK_TIMEOUT_SECONDS) -> str:
    """"ok", or the error class: connects to the broker, bounded by `timeout`. The in-memory
    broker lives in this process and is always reachable."""
    if url.startswith("memory://"):
        return "ok"
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout,
                        transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                           "max_retries": 0}) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        return f"error: {type(exc).__name__}"
    return "ok"


@bp.get("/healthz")
@declare("Liveness", responses={200: Health}, tags=("operations",))
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
@declare("Readiness: database, policy, providers, broker", responses={200: Readiness, 503: Readiness},
         tags=("operations",))
def readyz():
    st = state()
    checks: dict[str, object] = {}
    ok = True
    try:
        with st.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        checks["database"] = f"error: {type(exc).__name__}"
        ok = False
    try:
        checks["policy_version"] = st.policies.active().version
    except Exception as exc:  # noqa: BLE001
        checks["policy_version"] = f"error: {exc}"
        ok = False
    if st.providers is not None:
        checks["providers"] = st.providers.describe()
    if st.dispatcher is not None:
        checks["broker"] = st.dispatcher.broker_description()
    checks["broker_connection"] = broker_check(st.settings.broker_url)
    ok = ok and checks["broker_connection"] == "ok"
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks}), 200 if ok else 503


@bp.get("/metrics")
@declare("Prometheus metrics", responses={200: Media("text/plain", "Prometheus text format")},
         auth=Auth.METRICS_TOKEN, tags=("operations",))
def metrics():
    token = state().settings.metrics_token
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            raise ApiError(401, ErrorCode.UNAUTHORIZED, "Authorization: send 'Bearer <METRICS_TOKEN>'",
                           field="Authorization")
    return Response(exposition(), mimetype=CONTENT_TYPE_LATEST)
