"""Liveness, readiness and metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from ..app_state import state
from ..metrics import REGISTRY

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
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
    return jsonify({"status": "ready" if ok else "not_ready", "checks": checks}), 200 if ok else 503


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(REGISTRY), mimetype=CONTENT_TYPE_LATEST)
