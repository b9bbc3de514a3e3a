"""Load generators, each in its own process.

wrk (closed loop, C): `run_wrk` writes a Lua script (POST, JSON bodies varied per request and
per wrk thread, Authorization header; or a cycle through pre-signed Twilio callbacks), runs
wrk, parses its summary and reports the CPU wrk itself used.

Python (asyncio + bench/httpraw.py), `python bench/loadgen.py SPEC.json`:
  mode "open":  request i is due at start + i/rate, whether or not earlier ones finished
                (open loop: latency is measured from the due time, so a slow server cannot
                slow the generator down and hide its own queueing);
  mode "burst": `count` requests through `conns` connections as fast as they answer.
Writes {"records": [[i, t_due, t_done, status, id], ...], "late_p99_ms", "cpu_s"} to spec["out"];
times are time.monotonic() (CLOCK_MONOTONIC, comparable with the other bench processes).
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import pct  # noqa: E402

# ----------------------------------------------------------------------------- bodies


def body_for(kind: str, i: int, users: int, tag: str) -> dict:
    if kind == "otp":
        return {"recipient": {"user_id": f"u-{i % users}"}, "category": "otp",
                "content": {"body": f"Your code is {i % 1000000:06d} ref {tag}{i}"}}
    if kind == "onboarding":
        return {"recipient": {"user_id": f"s-{i % users}"}, "category": "onboarding",
                "content": {"title": "Welcome", "body": f"Finish setting up your profile ({tag}{i})"}}
    raise ValueError(kind)


WRK_MESSAGES_LUA = """
local counter = 0
local users = %(users)d
local path = "%(path)s"
local nthread = 0
function setup(thread)
  thread:set("tid", nthread)
  nthread = nthread + 1
end
function init(args)
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "%(auth)s"
end
function request()
  counter = counter + 1
  local n = counter * 8 + (tid or 0)
  local body = string.format('{"recipient":{"user_id":"u-%%d"},"category":"otp",' ..
    '"content":{"body":"Your code is %%06d ref %(tag)s%%d"}}', n %% users, n %% 1000000, n)
  return wrk.format("POST", path, nil, body)
end
"""

WRK_LINES_LUA = """
local lines = {}
local idx = 0
local nthread = 0
function setup(thread)
  thread:set("tid", nthread)
  nthread = nthread + 1
end
function init(args)
  for line in io.lines("%(file)s") do lines[#lines + 1] = line end
  idx = (tid or 0) * math.floor(#lines / %(threads)d)
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
function request()
  idx = idx + 1
  local line = lines[(idx - 1) %% #lines + 1]
  local tab = string.find(line, "\\t")
  local headers = {}  -- wrk.format uses this table instead of wrk.headers: copy Host, Content-Type
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["X-Twilio-Signature"] = string.sub(line, 1, tab - 1)
  return wrk.format("POST", "%(path)s", headers, string.sub(line, tab + 1))
end
"""

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else float("nan")


def run_wrk(url: str, lua: str, seconds: float, *, conns: int, threads: int = 2, workdir: Path,
            name: str) -> dict:
    script = workdir / f"{name}.lua"
    script.write_text(lua)
    cmd = ["wrk", "-t", str(threads), "-c", str(conns), "-d", f"{seconds:g}s", "--latency",
           "--timeout", "10s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = proc.stdout
    res: dict = {"cmd": " ".join(cmd[:-3] + [script.name, url]), "wall_s": wall,
                 "wrk_cpu_cores": ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) / wall}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rate"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else 0
    for q in ("50", "90", "99"):
        m = re.search(rf"^\s+{q}(?:\.000)?%\s+(\S+)", out, re.M)
        res[f"p{q}_ms"] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1) if m else ""
    if proc.returncode != 0 or not m and res["requests"] == 0:
        res["error"] = (proc.stderr or out).strip()[-300:]
    return res


def messages_lua(auth_key: str, users: int, tag: str, path: str = "/v1/messages") -> str:
    return WRK_MESSAGES_LUA % {"users": users, "path": path, "auth": f"Bearer {auth_key}", "tag": tag}


def lines_lua(file: Path, path: str, threads: int) -> str:
    return WRK_LINES_LUA % {"file": str(file), "path": path, "threads": threads}


# ----------------------------------------------------------------- python generator


async def _generate(spec: dict) -> dict:
    from bench.httpraw import Pool

    pool = Pool("127.0.0.1", spec["port"], spec.get("conns", 32))
    headers = {"Content-Type": "application/json", **spec.get("headers", {})}
    method, path = spec.get("method", "POST"), spec["path"]
    records: list = []
    late: list[float] = []

    async def one(i: int, due: float) -> None:
        if spec.get("kind"):
            payload = json.dumps(body_for(spec["kind"], i, spec["users"], spec["tag"])).encode()
            p = path
        else:  # a list of [path, json body] to go through
            p, body = spec["items"][i]
            payload = json.dumps(body).encode()
        late.append(time.monotonic() - due)
        status, data = await pool.request(method, p, headers, payload)
        done = time.monotonic()
        ident = None
        if status in (200, 201, 202):
            try:
                ident = json.loads(data).get("id") or json.loads(data).get("token")
            except (ValueError, AttributeError):
                pass
        records.append([i, due, done, status, ident])

    count = spec["count"]
    t0 = time.monotonic() + 0.05
    tasks = []
    if spec["mode"] == "open":
        rate = spec["rate"]
        for i in range(count):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i, due)))
    else:  # burst, closed loop over the pool's connections
        sem = asyncio.Semaphore(spec.get("conns", 32))

        async def gated(i: int) -> None:
            async with sem:
                await one(i, time.monotonic())

        tasks = [asyncio.ensure_future(gated(i)) for i in range(count)]
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=spec.get("max_seconds", 300))
    pool.close()
    return {"records": records, "late_p99_ms": pct(late, 0.99) * 1e3,
            "cpu_s": time.process_time()}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_generate(spec))
    Path(spec["out"]).write_text(json.dumps(result))


def run_python(spec: dict, workdir: Path, name: str, timeout: float = 400) -> dict:
    """Runs the generator in its own process and returns its result (or {'error': ...})."""
    from bench.common import PY
    from bench.common import ROOT as root

    spec = dict(spec, out=str(workdir / f"{name}.out.json"))
    path = workdir / f"{name}.spec.json"
    path.write_text(json.dumps(spec))
    try:
        proc = subprocess.run([PY, str(root / "bench" / "loadgen.py"), str(path)], capture_output=True,
                              text=True, timeout=timeout, cwd=root)
    except subprocess.TimeoutExpired:
        return {"error": f"generator timed out after {timeout:.0f} s", "records": []}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip()[-400:], "records": []}
    return json.loads(Path(spec["out"]).read_text())


if __name__ == "__main__":
    main()
