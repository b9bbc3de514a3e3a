"""All benchmarks in one command; every figure sits next to the bare baseline measured in the
same run on the same database.

    .venv/bin/python bench/run_all.py [--quick] [--no-pg] [--keep]      (or: make bench)

Every server is its own process started by bench/serve_app.py on `orchestrator.server.
make_server` (uvicorn, the server `orchestrator serve` runs) with the same thread count; load
comes from other processes (wrk, or bench/loadgen.py's open-loop generator); the Twilio fake
runs in its own process (bench/twilio_fake_proc.py). Parts (bench/parts.py):
  a accept req/s vs bare (SQLite and PostgreSQL; acceptance only and embedded default)
  b accept -> provider call: msgs/s over a batch, p50/p99 at half that rate (open loop)
  c signed Twilio receipts ingested/s
  d PostgreSQL + Redis: backlog drained by 1 vs 2 `orchestrator worker` processes
  e SQL statements, commits and CPU ms per message (in-process)
  f 1,000 open in-app streams: POST p99 with vs without, accept -> stream p99, memory/stream
  g batch send: recipients accepted/s in batches of 1,000 vs single sends, same server and DB
  + routing decisions/s (policy engine alone).
Lines starting NOTE: report anything that went wrong. Child processes are stopped (process
groups) when each part ends; the PostgreSQL schemas created are dropped; Redis db 15 flushed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def routing_rate(seconds: float) -> None:
    """Child mode: decisions/s of the policy engine over bench_policy's scenario mix."""
    import bench.bench_policy as bp
    from policies import decide, load_default_policy

    policy = load_default_policy()
    mix = bp.scenarios(512)
    for m, r, now in mix:
        decide(policy, m, r, now)
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < seconds:
        for m, r, now in mix:
            decide(policy, m, r, now)
        n += len(mix)
    elapsed = time.process_time() - t0
    print(json.dumps({"rate": n / elapsed, "us": elapsed / n * 1e6, "scenarios": len(mix),
                      "target": getattr(bp, "TARGET", None)}))


def run_routing(seconds: float) -> dict:
    import subprocess

    p = subprocess.run([sys.executable, __file__, "--routing", str(seconds)], capture_output=True, text=True,
                       timeout=seconds + 60, cwd=ROOT)
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": p.stderr.strip()[-300:]}


def reachable(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="short loads and small batches (~1 minute smoke run)")
    ap.add_argument("--no-pg", action="store_true", help="skip the PostgreSQL parts")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, Lua scripts, raw results)")
    ap.add_argument("--json", type=Path, help="also write every raw result to this file")
    ap.add_argument("--stream-rate", type=float, help="messages/s for part f (default: half of part b's rate)")
    ap.add_argument("--only", help="comma-separated parts to run: accept,e2e,workers,cost,batch,streams,routing")
    ap.add_argument("--routing", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.routing:
        return routing_rate(a.routing)

    from bench import parts, report

    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk): the HTTP load generator of this bench")
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    run = parts.Run(workdir, a.quick)
    pg_reason = ("--no-pg" if a.no_pg else None) or (None if reachable(5432) else "PostgreSQL not on 127.0.0.1:5432")
    redis_reason = None if reachable(6379) else "Redis not on 127.0.0.1:6379"
    t_start = time.monotonic()
    print(f"bench/run_all.py{' --quick' if a.quick else ''}: python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"uvicorn (orchestrator.server.make_server) with {parts.THREADS} threads for every server, wrk -c "
          f"{parts.WRK_CONNS}; load average at start {os.getloadavg()[0]:.2f}; work dir {workdir}", flush=True)

    results: dict = {}

    only = set(a.only.split(",")) if a.only else None

    def step(key: str, label: str, fn, *args, skip: str | None = None) -> None:
        if only is not None and key.split("_")[0] not in only:
            skip = skip or "not in --only"
        if skip:
            results[key] = {"skipped": skip}
            print(f"[{label}] skipped: {skip}", flush=True)
            return
        t0 = time.monotonic()
        print(f"[{label}] ...", end=" ", flush=True)
        try:
            results[key] = fn(*args)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other parts
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            run.notes.append(f"{label}: {type(exc).__name__}: {exc} | {traceback.format_exc(limit=2).splitlines()[-2]}")
        print(f"{time.monotonic() - t0:.0f} s", flush=True)

    try:
        step("accept_sqlite", "a accept, SQLite", parts.part_accept, run, "sqlite")
        step("accept_pg", "a accept, PostgreSQL", parts.part_accept, run, "pg", skip=pg_reason)
        step("e2e", "b+c e2e + receipts, SQLite + memory://", parts.part_e2e, run)
        step("workers", "d worker scaling, PostgreSQL + Redis", parts.part_workers, run, skip=pg_reason or redis_reason)
        step("cost", "e cost per message", parts.part_cost, run)
        step("batch", "g batch send vs single sends, SQLite", parts.part_batch, run)
        e2e_rate = results.get("e2e", {}).get("throughput", {}).get("rate") or 40.0
        rate = a.stream_rate or min(100.0, max(10.0, round(e2e_rate / 2)))
        step("streams", "f in-app streams", parts.part_streams, run, rate)
        step("routing", "routing decisions", run_routing, 1.0 if a.quick else 3.0)
    finally:
        parts.drop_pg_schemas(run)

    table = report.build(results)
    print()
    print(table.render())
    print()
    print("ratio = figure / bare baseline of the same run and database (bare = Flask + SQLAlchemy, one INSERT, same")
    print("server and thread count). Latencies: wrk for closed-loop rows, open-loop generator (due time -> answer /")
    print("arrival at the fake / event on the stream) elsewhere. See bench/README.md.")
    for note in run.notes:
        print("NOTE:", note)
    la = os.getloadavg()[0]
    if la > (os.cpu_count() or 1) * 1.5:
        print(f"NOTE: load average {la:.2f} on {os.cpu_count()} CPUs at the end: other work shared the box; "
              "read the ratios, not the absolute figures")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1, default=str))
    if a.keep:
        print(f"work dir kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"total {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
