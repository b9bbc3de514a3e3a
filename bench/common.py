"""Shared bits of the benchmark: constants, ports, percentiles, and child processes that are
always stopped (whole process group) when a part ends."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token-0123456789abcdef"
FROM_NUMBER = "+15005550006"
PHONE = "+447400123456"
PG_ADMIN_URL = "postgresql://root@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"
ERROR_LINE = re.compile(r"Traceback|\bERROR\b|CRITICAL|Exception in")


def in_process_app(tmp: str, db_name: str, **extra: str):
    """The app built in this process (SQLite under `tmp`, memory:// broker, no background
    threads, no rate limit as in base_env) with an admin key: (state, Flask test client, auth header)."""
    from orchestrator.access.auth import create_api_key
    from orchestrator.app import create_app
    from orchestrator.config import Settings

    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/{db_name}", "ORCHESTRATOR_DATA_DIR": tmp,
           "CELERY_BROKER_URL": "memory://", "EMBEDDED_WORKER": "false", "LOG_LEVEL": "WARNING",
           "RATE_LIMIT_PER_MINUTE": "1000000000", **extra}
    app = create_app(Settings.from_env(env), start_background=False)
    state = app.extensions["orchestrator"]
    with state.db.session() as s:
        _, key = create_api_key(s, "bench", ["admin"])
    return state, app.test_client(), {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_file(path: Path, timeout: float, proc: subprocess.Popen | None = None) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            try:
                return json.loads(path.read_text())
            except ValueError:
                pass  # half written
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a live process (all its threads) from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def cpu_by_group(groups: dict[str, list[int]], commands: dict[str, str]) -> dict[str, float]:
    """CPU seconds so far per group: the listed pids, plus every process whose command line
    contains a marker (`commands`: group -> marker, e.g. the PostgreSQL server processes)."""
    out: dict[str, float] = {}
    for group, pids in groups.items():
        out[group] = sum(cpu_seconds(pid) or 0.0 for pid in pids)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        for group, marker in commands.items():
            if marker in cmd:
                out[group] = out.get(group, 0.0) + (cpu_seconds(int(entry.name)) or 0.0)
    return out


class Procs:
    """Child processes of one part, each in its own session (process group), logs to files.
    `stop_all()` (in a finally) SIGTERMs every group, then SIGKILLs what is left."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.items: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, cmd: list[str], env: dict | None = None) -> subprocess.Popen:
        log = self.logdir / f"{name}.log"
        fh = open(log, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        fh.close()
        self.items.append((name, proc, log))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # anything the group left behind (uvicorn, celery pool threads are in-process)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def stop_all(self) -> None:
        for _, proc, _ in reversed(self.items):
            self.stop(proc)

    def error_lines(self) -> dict[str, list[str]]:
        out = {}
        for name, _, log in self.items:
            try:
                lines = [ln for ln in log.read_text(errors="replace").splitlines() if ERROR_LINE.search(ln)]
            except OSError:
                continue
            if lines:
                out[name] = lines
        return out


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DATABASE_", "CELERY_", "TWILIO_", "EMBEDDED_", "REDIS_"))}
    # The per-key rate limiter runs (its cost is measured) with a budget no run reaches.
    env.update({"PYTHONPATH": str(ROOT), "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1",
                "RATE_LIMIT_PER_MINUTE": "1000000000"})
    env.update(extra)
    return env
