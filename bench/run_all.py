"""All benchmarks in one command, with figures and ratios measured in the same run.

    .venv/bin/python bench/run_all.py [--quick]      (or: make bench)

Parts (see bench/README.md): 1 accepted sends/s vs a bare Flask+SQLite INSERT endpoint,
2 routing decisions/s, 3 end-to-end POST -> Twilio-fake messages/s with p50/p99 latency,
4 signed Twilio receipts ingested/s, 5 (optional) part 3+4 on PostgreSQL + Redis.

Each part runs in a fresh child process of this script (Celery's app and kombu's memory://
broker are process-global, so a leftover queue from one part would leak into the next); the
HTTP load generator of part 1 is a separate child process too, so client and server do not
share a GIL. Everything binds to 127.0.0.1 and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
PHONE = "+447400123456"


# --------------------------------------------------------------------------------- helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app, port: int):
    """werkzeug's threaded WSGI server in a daemon thread (same server type for both sides)."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    server.daemon_threads = True
    t = threading.Thread(target=server.serve_forever, name="wsgi", daemon=True)
    t.start()
    return server


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def run_child(args: list[str], timeout: float) -> dict:
    """Run this script with `args`; the child prints one JSON line prefixed RESULT:."""
    try:
        proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    err_lines = [ln for ln in proc.stderr.splitlines()
                 if "Traceback" in ln or "ERROR" in ln or "CRITICAL" in ln]
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT:"):
            out = json.loads(line[len("RESULT:"):])
            out["stderr_errors"] = len(err_lines)
            out["stderr_sample"] = err_lines[:3]
            return out
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
    return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}


def emit(result: dict) -> None:
    print("RESULT:" + json.dumps(result), flush=True)


# ------------------------------------------------------------------- load generator (child)

def load_main(spec: dict) -> None:
    """Closed-loop load: `threads` httpx clients with keep-alive POST for `seconds`
    (after `warmup` seconds not counted); bodies cycle through spec['bodies']."""
    import httpx

    url, headers, bodies = spec["url"], spec.get("headers", {}), spec["bodies"]
    stop_at = time.monotonic() + spec["warmup"] + spec["seconds"]
    count_from = time.monotonic() + spec["warmup"]
    lock = threading.Lock()
    ok = [0]
    statuses: dict[str, int] = {}
    lat: list[float] = []

    def worker(k: int) -> None:
        with httpx.Client(headers=headers, timeout=10.0) as c:
            i = k
            while True:
                t0 = time.monotonic()
                if t0 >= stop_at:
                    return
                try:
                    r = c.post(url, json=bodies[i % len(bodies)])
                    code = str(r.status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                t1 = time.monotonic()
                i += spec["threads"]
                if t0 >= count_from:
                    with lock:
                        statuses[code] = statuses.get(code, 0) + 1
                        if code == str(spec["expect"]):
                            ok[0] += 1
                            lat.append(t1 - t0)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(spec["threads"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit({"ok": ok[0], "rate": ok[0] / spec["seconds"], "statuses": statuses,
          "p50_ms": pct(lat, 0.5) * 1e3, "p99_ms": pct(lat, 0.99) * 1e3})


def run_load(url: str, headers: dict, bodies: list, expect: int, seconds: float, threads: int) -> dict:
    spec = {"url": url, "headers": headers, "bodies": bodies, "expect": expect,
            "seconds": seconds, "warmup": 1.0, "threads": threads}
    return run_child(["--load", json.dumps(spec)], timeout=seconds + 60)


# --------------------------------------------------------------------- app construction

def make_orchestrator(env: dict, *, start_background: bool):
    from orchestrator.app import create_app
    from orchestrator.auth import create_api_key
    from orchestrator.config import Settings

    app = create_app(Settings.from_env(env), start_background=start_background)
    st = app.extensions["orchestrator"]
    with st.db.session() as s:
        _, key = create_api_key(s, "bench", ["admin"])
    return app, st, key


def put_recipients(base: str, key: str, n: int) -> None:
    import httpx

    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        for i in range(n):
            r = c.put(f"{base}/v1/recipients/u-{i}",
                      json={"phone": PHONE, "email": f"u{i}@example.com", "timezone": "UTC"})
            if r.status_code >= 300:
                raise RuntimeError(f"PUT recipient: {r.status_code} {r.text[:300]}")


def otp_body(i: int, users: int) -> dict:
    return {"recipient": {"user_id": f"u-{i % users}"}, "category": "otp",
            "content": {"body": f"Your code is {i:06d}"}}


# ------------------------------------------------------------------------ part 1 (child)

def part_accept(seconds: float, threads: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-accept-"))

    # a) the real app, acceptance only
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": f"sqlite:///{tmp}/orch.sqlite3", "ORCHESTRATOR_DATA_DIR": str(tmp),
           "CELERY_BROKER_URL": "memory://", "EMBEDDED_WORKER": "false", "LOG_LEVEL": "WARNING",
           "PUBLIC_BASE_URL": base, "SWEEP_INTERVAL_SECONDS": "3600"}
    app, st, key = make_orchestrator(env, start_background=False)
    server = serve(app, port)
    users = 50
    put_recipients(base, key, users)
    bodies = [otp_body(i, users) for i in range(500)]
    real = run_load(f"{base}/v1/messages", {"Authorization": f"Bearer {key}"}, bodies, 202,
                    seconds, threads)
    server.shutdown()

    # b) bare Flask: one INSERT into a one-table SQLite DB (WAL, synchronous=NORMAL)
    import sqlite3

    from flask import Flask, jsonify, request

    db_path = tmp / "bare.sqlite3"
    with sqlite3.connect(db_path) as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    local = threading.local()

    def conn() -> sqlite3.Connection:
        if not hasattr(local, "c"):
            local.c = sqlite3.connect(db_path, timeout=5.0)
            local.c.execute("PRAGMA journal_mode=WAL")
            local.c.execute("PRAGMA synchronous=NORMAL")
            local.c.execute("PRAGMA busy_timeout=5000")
        return local.c

    bare = Flask("bare")

    @bare.post("/v1/messages")
    def send():
        c = conn()
        with c:
            cur = c.execute("INSERT INTO m (body) VALUES (?)", (json.dumps(request.get_json()),))
        return jsonify(id=cur.lastrowid, status="accepted"), 202

    port2 = free_port()
    server2 = serve(bare, port2)
    baseline = run_load(f"http://127.0.0.1:{port2}/v1/messages", {}, bodies, 202, seconds, threads)
    server2.shutdown()
    emit({"real": real, "bare": baseline, "threads": threads, "seconds": seconds})


# ------------------------------------------------------------------------ part 2 (child)

def part_policy(seconds: float) -> None:
    import bench.bench_policy as bp  # noqa: PLC0415  (someone else's module; reuse its mix)
    from policies import decide, load_default_policy

    policy = load_default_policy()
    mix = bp.scenarios(512)
    t0 = time.perf_counter()
    for m, r, now in mix:
        decide(policy, m, r, now)
    cold = len(mix) / (time.perf_counter() - t0)
    n = 0
    t0 = time.perf_counter()
    while True:
        for m, r, now in mix:
            decide(policy, m, r, now)
        n += len(mix)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    emit({"rate": n / elapsed, "us": elapsed / n * 1e6, "cold": cold, "n": n,
          "scenarios": len(mix), "target": getattr(bp, "TARGET", None), "version": policy.version})


# -------------------------------------------------------------------- parts 3+4 (child)

def part_e2e(n: int, threads: int, database_url: str, broker_url: str, label: str) -> None:
    import httpx

    from tests.fakes.twilio_fake import TwilioFake

    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    fake = TwilioFake(ACCOUNT_SID, AUTH_TOKEN).start()
    # The fake records requests without a time; wrap its message creation to stamp each one
    # (keyed by the unique body) with the monotonic time it was received.
    received_at: dict[str, float] = {}
    orig_create = fake._create_message

    def stamped(form):
        received_at.setdefault(form.get("Body", ""), time.monotonic())
        return orig_create(form)

    fake._create_message = stamped

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"DATABASE_URL": database_url.replace("{tmp}", str(tmp)), "ORCHESTRATOR_DATA_DIR": str(tmp),
           "CELERY_BROKER_URL": broker_url, "EMBEDDED_WORKER": "true", "LOG_LEVEL": "WARNING",
           "SWEEP_INTERVAL_SECONDS": "1", "PUBLIC_BASE_URL": base,
           "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_BASE_URL": fake.base_url}
    app, st, key = make_orchestrator(env, start_background=True)
    server = serve(app, port)
    users = 20
    put_recipients(base, key, users)
    time.sleep(0.5)  # let the worker connect to its broker

    posted_at: dict[str, float] = {}
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    hdr = {"Authorization": f"Bearer {key}"}

    def sender(k: int) -> None:
        with httpx.Client(headers=hdr, timeout=10) as c:
            for i in range(k, n, threads):
                body = otp_body(i, users)
                t0 = time.monotonic()
                try:
                    code = str(c.post(f"{base}/v1/messages", json=body).status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    statuses[code] = statuses.get(code, 0) + 1
                    if code == "202":
                        posted_at[body["content"]["body"]] = t0

    start = time.monotonic()
    ts = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    post_done = time.monotonic()
    deadline = post_done + 45
    while time.monotonic() < deadline:
        if all(b in received_at for b in posted_at):
            break
        time.sleep(0.02)
    got = [b for b in posted_at if b in received_at]
    lats = [received_at[b] - posted_at[b] for b in got]
    last = max((received_at[b] for b in got), default=time.monotonic())
    e2e = {"n": n, "accepted": len(posted_at), "delivered_to_fake": len(got),
           "post_statuses": statuses, "post_rate": len(posted_at) / (post_done - start),
           "rate": len(got) / (last - start) if got else 0.0,
           "p50_ms": pct(lats, 0.5) * 1e3, "p99_ms": pct(lats, 0.99) * 1e3,
           "max_ms": max(lats) * 1e3 if lats else float("nan"),
           "fake_requests": len(fake.requests)}

    # part 4: signed status callbacks for every sid the fake created
    sids = list(fake.messages)
    cbs = []
    cb_errors = 0
    for sid in sids:
        try:
            cbs.append(fake.status_callback_for(sid, "delivered"))
        except ValueError:
            cb_errors += 1
    rstat: dict[str, int] = {}

    def poster(k: int) -> None:
        with httpx.Client(timeout=10) as c:
            for cb in cbs[k::threads]:
                try:
                    code = str(c.post(cb.url, data=cb.form, headers=cb.headers).status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    rstat[code] = rstat.get(code, 0) + 1

    t0 = time.monotonic()
    ts = [threading.Thread(target=poster, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    rec_elapsed = time.monotonic() - t0
    ok = rstat.get("204", 0) + rstat.get("200", 0)
    receipts = {"n": len(cbs), "ok": ok, "statuses": rstat, "no_status_callback": cb_errors,
                "rate": ok / rec_elapsed if rec_elapsed else 0.0,
                "callback_url": cbs[0].url if cbs else None}

    # how many messages ended delivered (receipts applied)?
    delivered = None
    try:
        from sqlalchemy import text

        with st.db.session() as s:
            rows = s.execute(text("SELECT status, count(*) FROM messages GROUP BY status")).all()
            delivered = {str(a): int(b) for a, b in rows}
    except Exception as exc:  # noqa: BLE001 - best effort, table names may differ
        delivered = {"unavailable": type(exc).__name__}
    receipts["message_statuses"] = delivered

    server.shutdown()
    try:
        st.dispatcher.stop()
    except Exception:  # noqa: BLE001
        pass
    fake.close()
    emit({"label": label, "e2e": e2e, "receipts": receipts, "threads": threads})


# -------------------------------------------------------------------------- part 5 prep

def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def pg_schema_url() -> tuple[str | None, str]:
    if not reachable("127.0.0.1", 5432):
        return None, "PostgreSQL not reachable on 127.0.0.1:5432"
    if not reachable("127.0.0.1", 6379):
        return None, "Redis not reachable on 127.0.0.1:6379"
    try:
        import psycopg
    except ImportError:
        return None, "psycopg not installed"
    schema = f"bench_{os.getpid()}_{int(time.time())}"
    try:
        with psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True,
                             connect_timeout=3) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # noqa: BLE001
        return None, f"cannot create schema: {type(exc).__name__}: {exc}"
    return (f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{schema}",
            schema)


def drop_schema(schema: str) -> None:
    try:
        import psycopg

        with psycopg.connect("postgresql://root@127.0.0.1:5432/test", autocommit=True,
                             connect_timeout=3) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:  # noqa: BLE001
        pass


def flush_redis_db15() -> None:
    try:
        import redis

        redis.Redis(host="127.0.0.1", port=6379, db=15, socket_timeout=2).flushdb()
    except Exception:  # noqa: BLE001
        pass


# ------------------------------------------------------------------------------ report

def fmt(x, spec=",.0f") -> str:
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (smoke test)")
    ap.add_argument("--no-pg", action="store_true", help="skip part 5")
    ap.add_argument("--load")
    ap.add_argument("--part")
    ap.add_argument("--arg", default="{}")
    a = ap.parse_args()
    if a.load:
        return load_main(json.loads(a.load))
    if a.part:
        p = json.loads(a.arg)
        if a.part == "accept":
            return part_accept(p["seconds"], p["threads"])
        if a.part == "policy":
            return part_policy(p["seconds"])
        if a.part == "e2e":
            return part_e2e(p["n"], p["threads"], p["db"], p["broker"], p["label"])
        raise SystemExit(f"unknown part {a.part}")

    secs = 3.0 if a.quick else 8.0
    n = 60 if a.quick else 300
    threads = 4
    t_start = time.monotonic()
    print(f"bench/run_all.py: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"{threads} client threads, werkzeug threaded server on 127.0.0.1; "
          f"load average at start {os.getloadavg()[0]:.2f}", flush=True)

    print("[1/5] acceptance: real app vs bare Flask+SQLite ...", flush=True)
    r1 = run_child(["--part", "accept", "--arg", json.dumps({"seconds": secs, "threads": threads})], 150)
    print("[2/5] routing decisions ...", flush=True)
    r2 = run_child(["--part", "policy", "--arg", json.dumps({"seconds": 3.0})], 60)
    print("[3-4/5] end-to-end on SQLite + memory:// ...", flush=True)
    r3 = run_child(["--part", "e2e", "--arg", json.dumps(
        {"n": n, "threads": threads, "db": "sqlite:///{tmp}/orch.sqlite3", "broker": "memory://",
         "label": "sqlite+memory"})], 120)
    r5: dict = {}
    if a.no_pg:
        r5 = {"skipped": "--no-pg"}
    else:
        url, info = pg_schema_url()
        if url is None:
            r5 = {"skipped": info}
        else:
            print("[5/5] end-to-end on PostgreSQL + redis:// ...", flush=True)
            flush_redis_db15()
            r5 = run_child(["--part", "e2e", "--arg", json.dumps(
                {"n": n, "threads": threads, "db": url, "broker": "redis://127.0.0.1:6379/15",
                 "label": "postgres+redis"})], 120)
            drop_schema(info)
            flush_redis_db15()

    rows: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if "error" in r1:
        rows.append(("1 accepted sends/s", "ERROR", r1["error"]))
    else:
        real, bare = r1["real"], r1["bare"]
        for name, r in (("1a real app POST /v1/messages", real), ("1b bare Flask 1 INSERT", bare)):
            if "error" in r:
                rows.append((name, "ERROR", r["error"]))
                continue
            rows.append((name, f"{fmt(r['rate'])} req/s",
                         f"p50 {fmt(r['p50_ms'], '.1f')} ms, p99 {fmt(r['p99_ms'], '.1f')} ms; "
                         f"statuses {r['statuses']}"))
        if "rate" in real and "rate" in bare and bare["rate"]:
            rows.append(("1 ratio real/bare", f"{real['rate'] / bare['rate']:.2f}",
                         f"bare is {bare['rate'] / max(real['rate'], 1e-9):.1f}x the real app"))
    if "error" in r2:
        rows.append(("2 routing decisions/s", "ERROR", r2["error"]))
    else:
        extra = f"{fmt(r2['us'], '.1f')} µs/decision; cold first pass {fmt(r2['cold'])}/s; " \
                f"{r2['scenarios']} scenarios, policy {r2['version']}"
        if r2.get("target"):
            extra += f"; vs target {r2['target']:,}/s ratio {r2['rate'] / r2['target']:.2f}"
        rows.append(("2 routing decisions/s (1 thread)", f"{fmt(r2['rate'])} /s", extra))
    for tag, r in (("3/4", r3), ("5", r5)):
        if "skipped" in r:
            rows.append((f"{tag} e2e", "SKIPPED", r["skipped"]))
            continue
        if "error" in r:
            rows.append((f"{tag} e2e", "ERROR", r["error"]))
            continue
        e, rc, lab = r["e2e"], r["receipts"], r["label"]
        num = "3" if tag == "3/4" else "5"
        rows.append((f"{num} e2e msgs/s POST->fake ({lab})", f"{fmt(e['rate'], ',.1f')} /s",
                     f"p50 {fmt(e['p50_ms'], '.0f')} ms, p99 {fmt(e['p99_ms'], '.0f')} ms, "
                     f"max {fmt(e['max_ms'], '.0f')} ms; {e['delivered_to_fake']}/{e['accepted']} "
                     f"reached fake ({e['fake_requests']} fake requests); POST {e['post_statuses']}, "
                     f"{fmt(e['post_rate'], ',.0f')} accepted/s during the burst"))
        rnum = "4" if tag == "3/4" else "5"
        rows.append((f"{rnum} receipts ingested/s ({lab})", f"{fmt(rc['rate'], ',.0f')} /s",
                     f"{rc['ok']}/{rc['n']} accepted, statuses {rc['statuses']}; "
                     f"message statuses after: {rc['message_statuses']}"))
        if "rate" in r1.get("real", {}) and e["rate"]:
            rows.append((f"{num} ratio e2e/accept ({lab})", f"{e['rate'] / r1['real']['rate']:.2f}",
                         "end-to-end msgs/s divided by part-1 accepted req/s"))
        if e["delivered_to_fake"] < e["accepted"]:
            notes.append(f"{lab}: only {e['delivered_to_fake']} of {e['accepted']} accepted messages "
                         "reached the Twilio fake within 45 s of the last POST")
        if rc["ok"] < rc["n"]:
            notes.append(f"{lab}: {rc['n'] - rc['ok']} receipts not accepted: {rc['statuses']}")

    for lab, r in (("part 1", r1), ("part 2", r2), ("parts 3-4", r3), ("part 5", r5)):
        if r.get("stderr_errors"):
            notes.append(f"{lab}: {r['stderr_errors']} error/traceback lines in the service log, "
                         f"e.g. {r['stderr_sample']}")
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print()
    print(f"{'benchmark'.ljust(w)}  {'result'.rjust(v)}  details")
    print(f"{'-' * w}  {'-' * v}  {'-' * 7}")
    for name, val, det in rows:
        print(f"{name.ljust(w)}  {val.rjust(v)}  {det}")
    print()
    print("Part 1 runs with EMBEDDED_WORKER=false: only acceptance (auth, validation, routing,")
    print("one transaction, enqueue to memory://) is measured, nothing is delivered. Parts 3-4")
    print("run the embedded Celery worker + sweeper in the web process; latency = time the")
    print("Twilio fake received the send minus the time the client started the POST.")
    print(f"{threads} closed-loop client threads (httpx keep-alive); part 1 load runs in its own")
    print("process, parts 3-4 clients run inside the server process (shared GIL).")
    for note in notes:
        print("NOTE:", note)
    la = os.getloadavg()[0]
    if la > (os.cpu_count() or 1):
        print(f"NOTE: load average {la:.2f} on {os.cpu_count()} CPUs at the end: other work shared "
              "the box, so absolute figures are low and noisy; same-run ratios are more reliable")
    print(f"total {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
