"""A scaled-out run, as compose runs it: PostgreSQL, a Redis broker, `serve --workers 2`,
two Celery workers and the scheduler, each a real process; Twilio is the wire-level fake.

Checks, across the processes: the metrics endpoints show exactly the messages accepted (the
API's /metrics, whichever server process answers, adds up both) and sent (the workers'
METRICS_PORTs); every line each process wrote is JSON; the request id of each send reaches
the worker's log lines of its delivery; SIGTERM stops every process cleanly (exit 0, the
sweeper lease handed back)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.twilio_fake import TwilioFake
from tests.ops.processes import (
    SHARED_REDIS_URL,
    base_env,
    create_key,
    free_port,
    metric_total,
    start,
    wait_for,
    wait_http,
)

SID, TOKEN = "AC" + "3" * 32, "ops-twilio-token"
PHONE = "+447400123456"
N_MESSAGES = 12

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def test_scaled_out_metrics_logs_and_shutdown(tmp_path, schema, broker):
    with TwilioFake(SID, TOKEN) as twilio:
        env = base_env(tmp_path, DATABASE_URL=schema.url, CELERY_BROKER_URL=broker, REDIS_URL=SHARED_REDIS_URL,
                       TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                       TWILIO_API_BASE_URL=twilio.base_url)
        api_port, worker_ports, scheduler_port = free_port(), [free_port(), free_port()], free_port()
        base = f"http://127.0.0.1:{api_port}"
        procs = []
        try:
            api = start(tmp_path, "api", ["serve", "--workers", "2", "--port", str(api_port)],
                        {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "api-metrics")})
            procs.append(api)
            wait_http(f"{base}/readyz", 120, procs)
            workers = [start(tmp_path, f"worker-{i}", ["worker", "-c", "2"], {**env, "METRICS_PORT": str(port)})
                       for i, port in enumerate(worker_ports)]
            scheduler = start(tmp_path, "scheduler", ["scheduler"], {**env, "METRICS_PORT": str(scheduler_port)})
            procs += [*workers, scheduler]
            for port in (*worker_ports, scheduler_port):
                wait_http(f"http://127.0.0.1:{port}/metrics", 120, procs)
            wait_for(lambda: (sum("ready." in line for w in workers for line in w.lines()) == 2, None), 60,
                     "both workers consuming", procs)

            auth = {"Authorization": f"Bearer {create_key(env)}"}
            r = httpx.put(f"{base}/v1/recipients/u-ops", headers=auth, json={"phone": PHONE, "timezone": "UTC"})
            assert r.status_code in (200, 201), r.text
            ids: dict[str, str] = {}
            for i in range(N_MESSAGES):  # a connection each, so both server processes take requests
                r = httpx.post(f"{base}/v1/messages", headers={**auth, "X-Request-Id": f"req-ops-{i}"}, json={
                    "recipient": {"user_id": "u-ops"}, "category": "otp", "urgency": "high",
                    "content": {"body": f"code {i:06d}"}})
                assert r.status_code == 202, r.text
                assert r.headers["X-Request-Id"] == f"req-ops-{i}"
                ids[r.json()["id"]] = f"req-ops-{i}"

            wait_for(lambda: (len(twilio.messages) >= N_MESSAGES, len(twilio.messages)), 60,
                     f"{N_MESSAGES} SMS at the Twilio fake", procs)
            sent_rows = wait_for(lambda: ((n := schema.scalar(
                "SELECT count(*) FROM attempts WHERE status = 'sent'")) == N_MESSAGES, n), 30, "attempts recorded")
            assert len(twilio.messages) == N_MESSAGES == sent_rows

            for _ in range(6):  # whichever server process answers, it reports both
                text = httpx.get(f"{base}/metrics").text
                assert metric_total(text, "orchestrator_messages_accepted_total") == N_MESSAGES, text
            per_worker = [httpx.get(f"http://127.0.0.1:{p}/metrics").text for p in worker_ports]
            assert sum(metric_total(t, "orchestrator_attempts_sent_total") for t in per_worker) == N_MESSAGES
            assert sum(metric_total(t, "orchestrator_provider_sends_total", provider="twilio", outcome="ok")
                       for t in per_worker) == N_MESSAGES
            assert sum(metric_total(t, "orchestrator_provider_send_duration_seconds_count", provider="twilio")
                       for t in per_worker) == N_MESSAGES
            assert "orchestrator_due_attempts" in httpx.get(f"http://127.0.0.1:{scheduler_port}/metrics").text
            api_text = httpx.get(f"{base}/metrics").text
            assert metric_total(api_text, "orchestrator_http_request_duration_seconds_count",
                                route="/v1/messages", method="POST", status="202") == N_MESSAGES
        finally:
            codes = {p.name: p.terminate() for p in procs}
            for p in procs:
                p.kill()
    assert codes == {p.name: 0 for p in procs}, codes
    assert schema.scalar("SELECT count(*) FROM leases") == 0, "every sweeper handed its lease back"

    lines = {p.name: p.json_lines() for p in procs}  # every line of every process is JSON
    everything = json.dumps(lines)
    assert PHONE not in everything and PHONE[1:] not in everything and "u-ops" not in everything
    worker_lines = [e for p in procs if p.name.startswith("worker") for e in lines[p.name]]
    sent = {e["message_id"]: e.get("request_id") for e in worker_lines if e["msg"] == "attempt sent"}
    assert sent == ids, "each delivery logs its message id and the request id that caused it"
    accepted = {e["message_id"]: e["request_id"] for e in lines["api"] if e["msg"] == "message accepted"}
    assert accepted == ids
    assert any("warm shutdown" in e["msg"] for e in worker_lines)
    assert any(e["msg"] == "scheduler stopped" for e in lines["scheduler"])
    shutdowns = [e["msg"] for e in lines["api"] if e["logger"].startswith("uvicorn")]
    assert shutdowns.count("Application shutdown complete.") == 2, shutdowns  # both server processes
