"""Real service processes for operations tests: `orchestrator serve | worker | scheduler`
started as a operator would, their output kept in files, every line checked to be JSON."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL

ORCHESTRATOR = str(Path(sys.executable).with_name("orchestrator"))
PROVIDER_PREFIXES = ("TWILIO_", "SMTP_", "FCM_", "APNS_")
# Redis databases of these tests' own (others' tests use 0, 13-15).
BROKER_URL = "redis://127.0.0.1:6379/9"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/8"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(PROVIDER_PREFIXES) and k not in {"DATABASE_URL", "PROMETHEUS_MULTIPROC_DIR",
                                                                 "METRICS_PORT", "PORT", "REDIS_URL"}}
    env.update(ORCHESTRATOR_DATA_DIR=str(tmp_path), LOG_LEVEL="INFO", SECRET_KEY="ops-test-secret",
               SWEEP_INTERVAL_SECONDS="0.5", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    out: Path
    err: Path
    exit_code: int | None = field(default=None)

    def lines(self) -> list[str]:
        return [line for path in (self.out, self.err) for line in path.read_text().splitlines()]

    def json_lines(self) -> list[dict]:
        """Every line the process wrote, parsed: a line that is not a JSON object fails."""
        parsed = []
        for line in self.lines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"{self.name} wrote a line that is not JSON: {line!r}") from None
            assert isinstance(entry, dict) and {"ts", "level", "logger", "msg"} <= entry.keys(), line
            parsed.append(entry)
        return parsed

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as a container runtime stops a service; waits for the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        self.exit_code = self.popen.wait(timeout)
        return self.exit_code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def start(tmp_path: Path, name: str, args: list[str], env: dict[str, str]) -> Proc:
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    popen = subprocess.Popen([ORCHESTRATOR, *args], env=env, stdout=out.open("w"), stderr=err.open("w"),
                             stdin=subprocess.DEVNULL)
    return Proc(name, popen, out, err)


def wait_for(predicate, timeout: float, what: str, procs: list[Proc] = ()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        for p in procs:
            if p.popen.poll() is not None:
                raise AssertionError(f"{p.name} exited ({p.popen.returncode}) while waiting for {what}:\n"
                                     + "\n".join(p.lines()[-20:]))
        try:
            ok, last = predicate()
        except (httpx.HTTPError, OSError) as exc:
            ok, last = False, repr(exc)
        if ok:
            return last
        time.sleep(0.2)
    raise AssertionError(f"{what}: not met within {timeout} s; last: {last}")


def wait_http(url: str, timeout: float, procs: list[Proc], status: int = 200) -> None:
    wait_for(lambda: ((r := httpx.get(url, timeout=2)).status_code == status, r.status_code), timeout,
             f"{url} answering {status}", procs)


def create_key(env: dict[str, str], scopes: str = "send,read,recipients") -> str:
    done = subprocess.run([ORCHESTRATOR, "keys", "create", "--name", "ops", "--scopes", scopes], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["key"]


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def metric_total(exposition: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


class PgSchema:
    """A PostgreSQL schema of its own, dropped after."""

    def __init__(self) -> None:
        self.name = f"ops_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(PG_URL)
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.name}"'))
        sep = "&" if "?" in PG_URL else "?"
        self.url = f"{PG_URL}{sep}options=-csearch_path%3D{self.name}"

    def scalar(self, sql: str):
        with self.admin.begin() as conn:
            conn.execute(text(f'SET search_path TO "{self.name}"'))
            return conn.execute(text(sql)).scalar()

    def drop(self) -> None:
        with self.admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{self.name}" CASCADE'))
        self.admin.dispose()


def purge_broker(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()
