"""The measured parts. Each takes a `Run` (work dir, notes, sizes) and returns a dict; every
process a part starts is stopped in its `finally`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from bench import loadgen
from bench.common import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    PG_ADMIN_URL,
    PHONE,
    PY,
    REDIS_URL,
    ROOT,
    Procs,
    base_env,
    cpu_by_group,
    cpu_seconds,
    free_port,
    pct,
    rss_kb,
    wait_file,
    wait_port,
)

VENV_BIN = Path(PY).parent
THREADS = int(os.environ.get("BENCH_THREADS", "16"))  # WEB_THREADS default; the same for every server
WRK_CONNS = 16


@dataclass
class Run:
    workdir: Path
    quick: bool
    notes: list[str] = field(default_factory=list)
    schemas: list[str] = field(default_factory=list)

    def secs(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def n(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def procs(self, name: str) -> Procs:
        d = self.workdir / name
        d.mkdir(exist_ok=True)
        return Procs(d)

    def collect_errors(self, part: str, procs: Procs) -> None:
        for name, lines in procs.error_lines().items():
            self.notes.append(f"{part}: {len(lines)} error/traceback lines in {name}'s log, e.g. {lines[0][:200]}")


@dataclass
class Server:
    port: int
    proc: subprocess.Popen
    key: str | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# -------------------------------------------------------------------------- processes

def start_fake(procs: Procs, name: str = "twilio-fake", latency_ms: float = 0) -> tuple[str, Path]:
    info, arrivals = procs.logdir / f"{name}.info.json", procs.logdir / f"{name}.arrivals.jsonl"
    proc = procs.start(name, [PY, str(ROOT / "bench" / "twilio_fake_proc.py"), "--info", str(info),
                              "--arrivals", str(arrivals), "--latency-ms", str(latency_ms)], base_env())
    got = wait_file(info, 20, proc)
    if got is None:
        raise RuntimeError(f"Twilio fake did not start (see {procs.logdir}/{name}.log)")
    return got["base_url"], arrivals


def real_env(db_url: str, tmp: Path, fake_url: str | None, port: int, **extra: str) -> dict:
    env = base_env(DATABASE_URL=db_url, ORCHESTRATOR_DATA_DIR=str(tmp), PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                   CELERY_BROKER_URL="memory://")
    if fake_url:
        env.update(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, TWILIO_FROM_NUMBER=FROM_NUMBER,
                   TWILIO_API_BASE_URL=fake_url)
    env.update(extra)
    return env


def start_server(procs: Procs, name: str, kind: str, *, env: dict | None = None, db: str | None = None,
                 port: int | None = None) -> Server:
    port = port or free_port()
    info = procs.logdir / f"{name}.info.json"
    cmd = [PY, str(ROOT / "bench" / "serve_app.py"), "--kind", kind, "--port", str(port), "--threads", str(THREADS)]
    if kind == "real":
        cmd += ["--info", str(info)]
    if db:
        cmd += ["--db", db]
    proc = procs.start(name, cmd, env or base_env())
    if not wait_port(port, 60, proc):
        raise RuntimeError(f"{name} did not start listening (see {procs.logdir}/{name}.log)")
    key = None
    if kind == "real":
        got = wait_file(info, 30, proc)
        if got is None:
            raise RuntimeError(f"{name} wrote no API key")
        key = got["key"]
    return Server(port, proc, key)


def new_pg_schema(run: Run) -> str:
    import psycopg

    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as c:
        c.execute(f'CREATE SCHEMA "{schema}"')
    run.schemas.append(schema)
    return f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


def drop_pg_schemas(run: Run) -> None:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as c:
            for schema in run.schemas:
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        run.schemas.clear()
    except Exception as exc:  # noqa: BLE001
        run.notes.append(f"could not drop PostgreSQL schemas {run.schemas}: {exc}")


def pg_attempt_statuses(run: Run) -> dict:
    """Attempt counts by status in the last schema this run created (for NOTE lines)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as c:
            rows = c.execute(f'SELECT status, count(*) FROM "{run.schemas[-1]}".attempts GROUP BY status').fetchall()
        return dict(rows)
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        return {"unavailable": str(exc)[:100]}


def flush_redis() -> None:
    import redis

    redis.Redis(host="127.0.0.1", port=6379, db=15, socket_timeout=2).flushdb()


def read_arrivals(path: Path) -> list[dict]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


class Arrivals:
    """The fake's arrivals file, read incrementally: a poll parses only the lines added since
    the last one (re-parsing the whole file every poll cost the benchmark process a large
    share of a core once thousands of sends had arrived, CPU taken from the measured ones)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.seen = path, 0, {}

    def poll(self) -> dict[str, float]:
        if self.path.exists():
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            end = chunk.rfind(b"\n") + 1  # a line being written waits for the next poll
            for line in chunk[:end].splitlines():
                try:
                    a = json.loads(line)
                except ValueError:
                    continue
                self.seen.setdefault(a["body"], a["t"])
            self.offset += end
        return self.seen


def wait_arrivals(path: Path, bodies: set[str], timeout: float) -> dict[str, float]:
    """Body -> arrival time at the fake, for `bodies`, waiting until all arrived or timeout."""
    deadline = time.monotonic() + timeout
    arrivals = Arrivals(path)
    while True:
        seen = arrivals.poll()
        got = {b: seen[b] for b in bodies if b in seen}
        if len(got) >= len(bodies) or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def drain_with_cpu(path: Path, bodies: set[str], timeout: float, groups: dict[str, list[int]],
                   commands: dict[str, str]) -> tuple[dict[str, float], dict[str, float], float]:
    """`wait_arrivals`, plus the CPU each process group used while the 10th to the 90th
    percentile of `bodies` arrived (start-up and tail excluded): cores used in that window.
    The group "bench" is this process (polling the arrivals): shown not to take the CPU."""
    groups = {**groups, "bench": [os.getpid()]}
    deadline = time.monotonic() + timeout
    arrivals = Arrivals(path)
    marks: list[tuple[float, dict[str, float]]] = []
    while True:
        seen = arrivals.poll()
        arrived = sum(1 for b in bodies if b in seen)
        for frac in (0.1, 0.9)[len(marks):]:
            if arrived >= frac * len(bodies):
                marks.append((time.monotonic(), cpu_by_group(groups, commands)))
        if arrived >= len(bodies) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    got = {b: seen[b] for b in bodies if b in seen}
    if len(marks) < 2:
        return got, {}, 0.0
    (t0, c0), (t1, c1) = marks
    wall = max(t1 - t0, 1e-9)
    return got, {g: (c1.get(g, 0.0) - c0.get(g, 0.0)) / wall for g in c1}, wall


def setup_users(run: Run, srv: Server, prefix: str, n: int, name: str, tokens: bool = False) -> list:
    items = [[f"/v1/recipients/{prefix}-{i}", {"phone": PHONE, "email": f"{prefix}{i}@example.com",
                                                "timezone": "UTC"}] for i in range(n)]
    hdr = {"Authorization": f"Bearer {srv.key}"}
    r = loadgen.run_python({"mode": "burst", "port": srv.port, "method": "PUT", "path": "", "items": items,
                            "count": n, "conns": 8, "headers": hdr}, run.workdir, f"{name}-put")
    bad = [x for x in r["records"] if x[3] not in (200, 201)]
    if r.get("error") or bad:
        raise RuntimeError(f"PUT recipients failed: {r.get('error') or bad[:3]}")
    if not tokens:
        return []
    items = [[f"/v1/recipients/{prefix}-{i}/inapp-token", {}] for i in range(n)]
    r = loadgen.run_python({"mode": "burst", "port": srv.port, "method": "POST", "path": "", "items": items,
                            "count": n, "conns": 8, "headers": hdr}, run.workdir, f"{name}-tokens")
    toks = sorted((x[0], x[4]) for x in r["records"] if x[3] == 201 and x[4])
    if len(toks) != n:
        raise RuntimeError(f"in-app tokens: {len(toks)} of {n} issued ({r.get('error')})")
    return [[f"{prefix}-{i}", t] for i, t in toks]


def latency_summary(records: list, expect=(202,)) -> dict:
    ok = [r for r in records if r[3] in expect]
    lat = [(r[2] - r[1]) * 1e3 for r in ok]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
    return {"n": len(records), "ok": len(ok), "statuses": statuses, "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99), "max_ms": max(lat) if lat else float("nan")}


def wrk_messages(run: Run, srv: Server, name: str, users: int) -> dict:
    lua = loadgen.messages_lua(srv.key or "none", users, tag=f"{name}-")
    loadgen.run_wrk(f"{srv.base}/v1/messages", lua, run.secs(2, 0.5), conns=WRK_CONNS, workdir=run.workdir,
                    name=f"{name}-warm")
    cpu0 = cpu_seconds(srv.pid)
    res = loadgen.run_wrk(f"{srv.base}/v1/messages", lua, run.secs(8, 2), conns=WRK_CONNS,
                          workdir=run.workdir, name=name)
    cpu1 = cpu_seconds(srv.pid)
    if cpu0 is not None and cpu1 is not None:
        res["server_cpu_cores"] = (cpu1 - cpu0) / res["wall_s"]
    if res.get("non2xx") or res.get("error"):
        run.notes.append(f"{name}: {res.get('non2xx')} non-2xx responses; {res.get('error', '')}")
    return res


# ------------------------------------------------------------------------ a. accept

def part_accept(run: Run, db_kind: str) -> dict:
    """Bare baseline, then the real app acceptance-only and on the embedded default, each a
    fresh server on a fresh database of `db_kind`; plus the trivial endpoint (load headroom)."""
    procs = run.procs(f"accept-{db_kind}")
    out: dict = {"db": db_kind}
    try:
        def db_url(label: str) -> str:
            if db_kind == "sqlite":
                d = run.workdir / f"{db_kind}-{label}"
                d.mkdir(exist_ok=True)
                return f"sqlite:///{d}/db.sqlite3"
            return new_pg_schema(run)

        if db_kind == "sqlite":  # load headroom: wrk against an endpoint that does nothing
            srv = start_server(procs, "trivial", "trivial")
            out["trivial"] = loadgen.run_wrk(f"{srv.base}/v1/messages", loadgen.messages_lua("x", 50, "t-"),
                                             run.secs(4, 1), conns=WRK_CONNS, workdir=run.workdir, name="trivial")
            procs.stop(srv.proc)
        fake_url, _ = start_fake(procs)
        srv = start_server(procs, "bare", "bare", db=db_url("bare"))
        out["bare"] = wrk_messages(run, srv, f"bare-{db_kind}", 50)
        procs.stop(srv.proc)  # one server at a time on the box
        for mode, embedded in (("noworker", "false"), ("embedded", "true")):
            port = free_port()
            url = db_url(mode)
            env = real_env(url, run.workdir, fake_url, port, EMBEDDED_WORKER=embedded)
            srv = start_server(procs, f"real-{mode}", "real", env=env, port=port)
            setup_users(run, srv, "u", 50, f"accept-{db_kind}-{mode}")
            out[mode] = wrk_messages(run, srv, f"real-{mode}-{db_kind}", 50)
            out[mode]["rss_kb"] = rss_kb(srv.pid)
            procs.stop(srv.proc)
    finally:
        procs.stop_all()
        run.collect_errors(f"accept/{db_kind}", procs)
    return out


# ----------------------------------------------------------- b + c. e2e and receipts

def part_e2e(run: Run) -> dict:
    procs = run.procs("e2e")
    out: dict = {}
    try:
        fake_url, arrivals = start_fake(procs)
        port = free_port()
        d = run.workdir / "e2e-db"
        d.mkdir(exist_ok=True)
        env = real_env(f"sqlite:///{d}/db.sqlite3", d, fake_url, port)  # embedded default
        srv = start_server(procs, "real-e2e", "real", env=env, port=port)
        users = 50
        setup_users(run, srv, "u", users, "e2e")
        hdr = {"Authorization": f"Bearer {srv.key}"}

        # b1. throughput: a fixed batch posted by 16 closed-loop connections
        n = run.n(1500, 200)
        r = loadgen.run_python({"mode": "burst", "port": srv.port, "path": "/v1/messages", "kind": "otp",
                                "users": users, "tag": "b-", "count": n, "conns": 16, "headers": hdr},
                               run.workdir, "e2e-burst")
        recs = [x for x in r["records"] if x[3] == 202]
        bodies = {loadgen.body_for("otp", x[0], users, "b-")["content"]["body"]: x[1] for x in recs}
        got = wait_arrivals(arrivals, set(bodies), run.secs(60, 30))
        first = min((x[1] for x in r["records"]), default=0.0)
        last = max(got.values(), default=first)
        post_end = max((x[2] for x in r["records"]), default=first)
        out["throughput"] = {
            "n": n, "accepted": len(recs), "reached": len(got), "rate": len(got) / (last - first) if got else 0.0,
            "post_rate": len(recs) / (post_end - first) if recs else 0.0,
            "statuses": latency_summary(r["records"])["statuses"],
            "error": r.get("error")}
        if len(got) < len(bodies):
            run.notes.append(f"e2e batch: {len(bodies) - len(got)} of {len(bodies)} accepted messages never "
                             "reached the Twilio fake")

        # b2. latency at a fixed open-loop rate of half the measured throughput
        rate = max(5.0, round(out["throughput"]["rate"] / 2, 1))
        count = int(rate * run.secs(12, 5))
        time.sleep(1.0)
        r = loadgen.run_python({"mode": "open", "port": srv.port, "path": "/v1/messages", "kind": "otp",
                                "users": users, "tag": "o-", "count": count, "rate": rate, "conns": 64,
                                "headers": hdr}, run.workdir, "e2e-open")
        recs = [x for x in r["records"] if x[3] == 202]
        bodies = {loadgen.body_for("otp", x[0], users, "o-")["content"]["body"]: x[1] for x in recs}
        got = wait_arrivals(arrivals, set(bodies), run.secs(30, 15))
        lat = [(got[b] - t) * 1e3 for b, t in bodies.items() if b in got]
        out["latency"] = {"rate": rate, "count": count, "accepted": len(recs), "reached": len(got),
                          "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "max_ms": max(lat, default=float("nan")),
                          "post": latency_summary(r["records"]), "gen_late_p99_ms": r.get("late_p99_ms"),
                          "error": r.get("error")}
        if len(got) < len(bodies):
            run.notes.append(f"e2e open loop: {len(bodies) - len(got)} of {len(bodies)} accepted messages never "
                             "reached the Twilio fake")
        out["receipts"] = receipts(run, srv, arrivals, d / "db.sqlite3")
    finally:
        procs.stop_all()
        run.collect_errors("e2e", procs)
    return out


def receipts(run: Run, srv: Server, arrivals: Path, sqlite_path: Path) -> dict:
    """c. Signed `sent` then `delivered` callbacks for every send the fake saw, by wrk."""
    from tests.fakes.twilio_fake import signed_callback

    sends = [a for a in read_arrivals(arrivals) if a.get("cb")]
    lines = []
    for status in ("sent", "delivered"):
        for a in sends:
            cb = signed_callback(AUTH_TOKEN, a["cb"], message_sid=a["sid"], status=status, account_sid=ACCOUNT_SID,
                                 to=a["to"], from_=a["from"] or "")
            lines.append(cb.signature + "\t" + urlencode(cb.form))
    if not lines:
        return {"error": "no sends with a StatusCallback reached the fake"}
    path = urlsplit_path(sends[0]["cb"])
    f = run.workdir / "receipts.lines"
    f.write_text("\n".join(lines) + "\n")
    cpu0 = cpu_seconds(srv.pid)
    res = loadgen.run_wrk(f"{srv.base}{path}", loadgen.lines_lua(f, path, 2), run.secs(5, 2), conns=WRK_CONNS,
                          workdir=run.workdir, name="receipts")
    cpu1 = cpu_seconds(srv.pid)
    if cpu0 is not None and cpu1 is not None:
        res["server_cpu_cores"] = (cpu1 - cpu0) / res["wall_s"]
    res["unique"] = len(lines)
    if res["requests"] > len(lines):
        run.notes.append(f"receipts: wrk sent {res['requests']} callbacks for {len(lines)} distinct events; "
                         "the rest were duplicates (recorded, status unchanged)")
    if res.get("non2xx") or res.get("error"):
        run.notes.append(f"receipts: {res.get('non2xx')} non-2xx responses {res.get('error', '')}")
    try:
        with sqlite3.connect(sqlite_path, timeout=10) as c:
            rows = c.execute("SELECT status, count(*) FROM messages GROUP BY status").fetchall()
            res["message_statuses"] = dict(rows)
    except sqlite3.Error as exc:
        res["message_statuses"] = {"unavailable": str(exc)}
    return res


def urlsplit_path(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


# ---------------------------------------------------------------- d. worker scaling

PROVIDER_LATENCY_MS = 100  # the slow-provider drain: about what an SMS API call over the internet takes


def part_workers(run: Run) -> dict:
    """PostgreSQL + Redis: the API accepts a backlog with no worker running (EMBEDDED_WORKER=
    false, tasks wait in Redis), then k `orchestrator worker -c 4` processes drain it: k = 1,
    then 2, against the fake answering at once (the workers' CPU is the limit), then again
    with the fake taking PROVIDER_LATENCY_MS per send (the provider is the limit)."""
    procs = run.procs("workers")
    out: dict = {}
    try:
        flush_redis()
        fake_url, arrivals = start_fake(procs)
        slow_url, slow_arrivals = start_fake(procs, "twilio-fake-slow", latency_ms=PROVIDER_LATENCY_MS)
        url = new_pg_schema(run)
        port = free_port()
        env = real_env(url, run.workdir, fake_url, port, CELERY_BROKER_URL=REDIS_URL, EMBEDDED_WORKER="false",
                       SWEEP_INTERVAL_SECONDS="3600")  # nothing but the accept path enqueues
        srv = start_server(procs, "api-pg", "real", env=env, port=port)
        setup_users(run, srv, "u", 50, "workers")
        fast = {"env": env, "arrivals": arrivals, "fake_pid": _fake_pid(procs, "twilio-fake")}
        slow = {"env": {**env, "TWILIO_API_BASE_URL": slow_url}, "arrivals": slow_arrivals,
                "fake_pid": _fake_pid(procs, "twilio-fake-slow")}
        for name, fake, n in (("", fast, run.n(2000, 200)), ("slow_", slow, run.n(400, 100))):
            for k in (1, 2):
                out[f"{name}w{k}"] = _drain(run, procs, srv, fake, k, n, f"{name}w{k}-")
            if out[f"{name}w1"].get("rate_10_90") and out[f"{name}w2"].get("rate_10_90"):
                out[f"{name}scaling"] = out[f"{name}w2"]["rate_10_90"] / out[f"{name}w1"]["rate_10_90"]
        out["provider_latency_ms"] = PROVIDER_LATENCY_MS
    finally:
        procs.stop_all()
        run.collect_errors("workers", procs)
        try:
            flush_redis()
        except Exception:  # noqa: BLE001
            pass
    return out


def _fake_pid(procs: Procs, name: str) -> int:
    return json.loads((procs.logdir / f"{name}.info.json").read_text())["pid"]


def _drain(run: Run, procs: Procs, srv: Server, fake: dict, k: int, n: int, tag: str) -> dict:
    """A backlog of n accepted `otp` messages, then k workers started: the arrival rate
    between the 10th and the 90th percentile, and the cores each process used meanwhile."""
    users, hdr = 50, {"Authorization": f"Bearer {srv.key}"}
    r = loadgen.run_python({"mode": "burst", "port": srv.port, "path": "/v1/messages", "kind": "otp",
                            "users": users, "tag": tag, "count": n, "conns": 16, "headers": hdr},
                           run.workdir, f"workers-{tag}backlog")
    recs = [x for x in r["records"] if x[3] == 202]
    bodies = {loadgen.body_for("otp", x[0], users, tag)["content"]["body"] for x in recs}
    early = wait_arrivals(fake["arrivals"], bodies, 0)
    workers = [procs.start(f"worker-{tag}{j}", [str(VENV_BIN / "orchestrator"), "worker", "-c", "4"], fake["env"])
               for j in range(k)]
    t0 = time.monotonic()
    got, cores, _ = drain_with_cpu(fake["arrivals"], bodies, run.secs(120, 60),
                                   {"workers": [w.pid for w in workers], "twilio fake": [fake["fake_pid"]],
                                    "api": [srv.pid]},
                                   {"postgres": "postgres", "redis": "redis-server"})
    times = sorted(got.values())
    res = {"workers": k, "backlog": len(recs), "reached": len(got), "before_workers": len(early),
           "post_statuses": latency_summary(r["records"])["statuses"], "cores": cores}
    if len(times) >= 10:
        i10, i90 = int(0.1 * len(times)), int(0.9 * len(times))
        res["rate_10_90"] = (i90 - i10) / max(times[i90] - times[i10], 1e-9)
        res["rate_all"] = (len(times) - 1) / max(times[-1] - times[0], 1e-9)
        res["drain_s"] = times[-1] - times[0]
        res["startup_s"] = times[0] - t0
    if len(got) < len(bodies):
        run.notes.append(f"workers {tag}: {len(bodies) - len(got)} of {len(bodies)} backlog messages not "
                         f"delivered in time; attempts by status: {pg_attempt_statuses(run)}")
    for w in workers:
        procs.stop(w, timeout=20)
    return res


# ----------------------------------------------------------------------- e. cost

def part_cost(run: Run) -> dict:
    procs = run.procs("cost")
    try:
        fake_url, _ = start_fake(procs)
        d = run.workdir / "cost"
        d.mkdir(exist_ok=True)
        spec = {"fake_url": fake_url, "messages": run.n(300, 60), "warmup": 30, "tmp": str(d),
                "out": str(d / "cost.json")}
        (d / "spec.json").write_text(json.dumps(spec))
        proc = procs.start("cost", [PY, str(ROOT / "bench" / "cost.py"), str(d / "spec.json")], base_env())
        try:
            proc.wait(120)
        except Exception:  # noqa: BLE001
            return {"error": "cost run timed out"}
        if proc.returncode != 0:
            tail = (procs.logdir / "cost.log").read_text()[-400:]
            return {"error": f"exit {proc.returncode}: {tail}"}
        return json.loads((d / "cost.json").read_text())
    finally:
        procs.stop_all()
        run.collect_errors("cost", procs)


# ------------------------------------------------------------------- f. streams

def part_streams(run: Run, rate: float) -> dict:
    procs = run.procs("streams")
    out: dict = {"rate": rate}
    try:
        fake_url, _ = start_fake(procs)
        port = free_port()
        d = run.workdir / "streams-db"
        d.mkdir(exist_ok=True)
        env = real_env(f"sqlite:///{d}/db.sqlite3", d, fake_url, port)  # embedded default
        srv = start_server(procs, "real-streams", "real", env=env, port=port)
        hdr = {"Authorization": f"Bearer {srv.key}"}
        stream_users = run.n(500, 100)
        setup_users(run, srv, "u", 50, "streams-otp")
        tokens = setup_users(run, srv, "s", stream_users, "streams", tokens=True)
        secs = run.secs(10, 3)

        def otp_load(tag: str) -> dict:
            r = loadgen.run_python({"mode": "open", "port": srv.port, "path": "/v1/messages", "kind": "otp",
                                    "users": 50, "tag": tag, "count": int(rate * secs), "rate": rate, "conns": 64,
                                    "headers": hdr}, run.workdir, f"streams-{tag}")
            s = latency_summary(r["records"])
            s["gen_late_p99_ms"] = r.get("late_p99_ms")
            if s["ok"] < s["n"]:
                run.notes.append(f"streams ({tag}): {s['n'] - s['ok']} POSTs not answered 202: {s['statuses']}")
            return s

        time.sleep(1.0)
        out["none"] = otp_load("sn-")
        time.sleep(1.0)
        rss0 = rss_kb(srv.pid)
        ready, events = procs.logdir / "streams.ready.json", procs.logdir / "streams.events.tsv"
        spec = {"port": srv.port, "tokens": tokens, "per_token": 2, "concurrency": 50, "ready": str(ready),
                "events": str(events), "max_seconds": 240}
        (procs.logdir / "streams.spec.json").write_text(json.dumps(spec))
        client = procs.start("streams-client", [PY, str(ROOT / "bench" / "streams_client.py"),
                                                str(procs.logdir / "streams.spec.json")], base_env())
        opened = wait_file(ready, 150, client) or {"opened": 0, "failed": "client gave no answer"}
        out["open"] = opened
        time.sleep(2.0)
        rss1 = rss_kb(srv.pid)
        if rss0 and rss1 and opened.get("opened"):
            out["kb_per_stream"] = (rss1 - rss0) / opened["opened"]
            out["rss_mb"] = [rss0 / 1024, rss1 / 1024]
        if opened.get("failed"):
            run.notes.append(f"streams: {opened['failed']} streams failed to open: {opened.get('statuses')}")
        out["with"] = otp_load("sw-")

        # accept -> item on the user's stream (onboarding goes in-app to a connected user)
        count = min(stream_users, int(rate * secs))
        r = loadgen.run_python({"mode": "open", "port": srv.port, "path": "/v1/messages", "kind": "onboarding",
                                "users": stream_users, "tag": "in-", "count": count, "rate": rate, "conns": 64,
                                "headers": hdr}, run.workdir, "streams-inapp")
        due = {x[4]: x[1] for x in r["records"] if x[3] == 202 and x[4]}
        deadline = time.monotonic() + run.secs(15, 8)
        first: dict[str, float] = {}
        while time.monotonic() < deadline:
            first = {}
            for line in events.read_text().splitlines() if events.exists() else []:
                t, mid, _ = line.split("\t")
                if mid in due and (mid not in first or float(t) < first[mid]):
                    first[mid] = float(t)
            if len(first) >= len(due):
                break
            time.sleep(0.2)
        lat = [(first[m] - due[m]) * 1e3 for m in first]
        out["inapp"] = {"posted": count, "accepted": len(due), "on_stream": len(first), "p50_ms": pct(lat, 0.5),
                        "p99_ms": pct(lat, 0.99), "post": latency_summary(r["records"])}
        if len(first) < len(due):
            run.notes.append(f"streams: {len(due) - len(first)} of {len(due)} in-app messages never appeared on "
                             "their user's stream")
    finally:
        procs.stop_all()
        run.collect_errors("streams", procs)
    return out


# ------------------------------------------------------------------- batch send

BATCH_SIZE = 1000
BATCH_CONNS = 4


def _post_batches(port: int, key: str, batches: list[bytes]) -> dict:
    """Posts the batches over BATCH_CONNS keep-alive connections; returns counts and wall time."""
    import http.client
    import threading

    lock = threading.Lock()
    out = {"accepted": 0, "refused": 0, "errors": [], "latencies_ms": []}
    queue = list(batches)

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    break
                body = queue.pop()
            t0 = time.monotonic()
            conn.request("POST", "/v1/messages/batch", body,
                         {"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
            resp = conn.getresponse()
            data = resp.read()
            ms = (time.monotonic() - t0) * 1e3
            with lock:
                out["latencies_ms"].append(ms)
                if resp.status == 202:
                    got = json.loads(data)
                    out["accepted"] += got["accepted"]
                    out["refused"] += got["refused"]
                else:
                    out["errors"].append(f"{resp.status} {data[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(BATCH_CONNS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out["wall_s"] = time.monotonic() - t0
    return out


def part_batch(run: Run) -> dict:
    """Single sends (wrk, as part a) and batches of 1,000 recipients, on the same server and
    SQLite database (acceptance only, EMBEDDED_WORKER=false): recipients accepted per second
    either way, and their ratio."""
    procs = run.procs("batch")
    out: dict = {"batch_size": BATCH_SIZE, "conns": BATCH_CONNS}
    try:
        fake_url, _ = start_fake(procs)
        d = run.workdir / "sqlite-batch"
        d.mkdir(exist_ok=True)
        port = free_port()
        env = real_env(f"sqlite:///{d}/db.sqlite3", run.workdir, fake_url, port, EMBEDDED_WORKER="false")
        srv = start_server(procs, "real-batch", "real", env=env, port=port)
        setup_users(run, srv, "u", 50, "batch")
        out["single"] = wrk_messages(run, srv, "batch-single", 50)

        def batch_body(b: int) -> bytes:
            return json.dumps({"category": "otp", "content": {"body": f"Your code is {b:06d}"},
                               "recipients": [{"recipient": {"user_id": f"u-{i % 50}"},
                                               "metadata": {"ref": f"b{b}-{i}"}} for i in range(BATCH_SIZE)]}).encode()

        _post_batches(srv.port, srv.key or "", [batch_body(-1)])  # warm-up
        n = run.n(12, 3)
        cpu0 = cpu_seconds(srv.pid)
        res = _post_batches(srv.port, srv.key or "", [batch_body(b) for b in range(n)])
        cpu1 = cpu_seconds(srv.pid)
        res["batches"] = n
        res["rate"] = res["accepted"] / res["wall_s"] if res["wall_s"] else 0.0
        lat = res.pop("latencies_ms")
        res["p50_ms"], res["p99_ms"] = pct(lat, 0.5), pct(lat, 0.99)
        if cpu0 is not None and cpu1 is not None:
            res["server_cpu_cores"] = (cpu1 - cpu0) / res["wall_s"]
        if res["errors"]:
            run.notes.append(f"batch: {len(res['errors'])} failed batch requests, e.g. {res['errors'][0]}")
        out["batch"] = res
        procs.stop(srv.proc)
    finally:
        procs.stop_all()
        run.collect_errors("batch", procs)
    return out
