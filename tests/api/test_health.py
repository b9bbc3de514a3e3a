"""Readiness checks the broker (bounded); /metrics can be protected by METRICS_TOKEN."""

from __future__ import annotations

import socket

from orchestrator.api.health import broker_check


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_broker_is_reported_not_ready():
    assert broker_check("memory://") == "ok"
    assert broker_check(f"redis://127.0.0.1:{_closed_port()}/0", timeout=0.5).startswith("error")


def test_readyz_with_the_memory_broker_is_ready(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.get_json()["checks"]["broker_connection"] == "ok"


def test_readyz_is_503_when_the_configured_broker_is_down(make_app):
    app = make_app(CELERY_BROKER_URL=f"redis://127.0.0.1:{_closed_port()}/0", EMBEDDED_WORKER="false")
    r = app.test_client().get("/readyz")
    assert r.status_code == 503, r.get_json()
    assert r.get_json()["checks"]["broker_connection"].startswith("error")


def test_metrics_open_without_a_token_and_protected_with_one(client, make_app):
    assert client.get("/metrics").status_code == 200
    protected = make_app(METRICS_TOKEN="s3cret").test_client()
    assert protected.get("/metrics").status_code == 401
    assert protected.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    r = protected.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and b"orchestrator_" in r.data
