"""Issue #19 §6, with real processes: two `orchestrator serve` processes on one PostgreSQL
database and one Redis, each with its own key cache kept for KEY_CACHE_SECONDS=60. A key
revoked through one process's API, or by the CLI (a third process), is refused by the other
within a second: the revocation is broadcast over Redis, not waited out (the bound allows
5 s for a loaded CI box; waiting out the TTL would take 60)."""

from __future__ import annotations

import json
import subprocess
import time

import httpx
import pytest

from tests.ops.processes import ORCHESTRATOR, SHARED_REDIS_URL, base_env, free_port, start, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

WITHIN = 5.0  # seconds: far inside the fallback (a frozen cache clock / a 60 s TTL), with room for a loaded CI box


def cli(env, *args) -> dict:
    done = subprocess.run([ORCHESTRATOR, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused_within(base: str, headers: dict[str, str]) -> tuple[float, int]:
    """Seconds until `base` answers 401 for the key, and how many requests it accepted meanwhile."""
    start, accepted = time.monotonic(), 0
    while True:
        status = httpx.get(f"{base}/v1/messages/nope", headers=headers).status_code
        elapsed = time.monotonic() - start
        if status == 401:
            return elapsed, accepted
        assert status == 404, status
        accepted += 1
        assert elapsed < WITHIN, f"still accepted after {elapsed:.2f} s ({accepted} requests)"


def test_a_revoked_key_is_refused_by_every_process_within_a_second(tmp_path, schema, broker):
    env = base_env(tmp_path, DATABASE_URL=schema.url, REDIS_URL=SHARED_REDIS_URL, KEY_CACHE_SECONDS="60")
    admin = {"Authorization": f"Bearer {cli(env, 'keys', 'create', '--name', 'root', '--scopes', 'admin')['key']}"}
    victims = [cli(env, "keys", "create", "--name", f"victim-{i}", "--scopes", "read") for i in range(2)]
    ports = [free_port(), free_port()]
    procs = [start(tmp_path, f"api-{i}", ["serve", "--port", str(port)], env) for i, port in enumerate(ports)]
    try:
        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        for base in (a, b):
            wait_http(f"{base}/readyz", 120, procs)
        headers = [{"Authorization": f"Bearer {v['key']}"} for v in victims]
        for base in (a, b):
            for h in headers:  # both keys valid, and now cached for 60 s in both processes
                assert httpx.get(f"{base}/v1/messages/nope", headers=h).status_code == 404

        r = httpx.request("DELETE", f"{a}/v1/keys/{victims[0]['id']}", headers=admin, json={"reason": "leaked"})
        assert r.status_code == 200, r.text
        assert httpx.get(f"{a}/v1/messages/nope", headers=headers[0]).status_code == 401   # at once in a
        api_delay, api_accepted = refused_within(b, headers[0])

        cli(env, "keys", "revoke", victims[1]["id"], "--reason", "rotated")   # a process of its own
        cli_delays = [refused_within(base, headers[1]) for base in (a, b)]
        print(f"\nrevoked through a's API: b refused after {api_delay * 1000:.0f} ms, {api_accepted} accepted; "
              f"by the CLI: a, b refused after "
              + ", ".join(f"{d * 1000:.0f} ms ({n} accepted)" for d, n in cli_delays))
    finally:
        codes = [p.terminate() for p in procs]
        for p in procs:
            p.kill()
    assert codes == [0, 0]
    for p in procs:
        p.json_lines()  # every line each process wrote is JSON
