"""A worker killed with SIGKILL mid-dispatch loses nothing.

Real processes: `orchestrator worker` subprocesses consume from Redis and send SMS through a
slow HTTP fake of Twilio (each send takes SEND_DELAY, so the worker is always mid-send);
the API (in this process) accepts the messages and enqueues them. The first worker is
killed with SIGKILL while sends are in flight; a second worker and the sweeper must finish
every message. Acks are late, so the dead worker's prefetched tasks stay unacked in Redis
(for the transport's visibility timeout, an hour); the database leases and the sweeper are
what bring them back. An attempt whose request reached the provider but whose outcome was
never committed is an uncertain send: the next claim asks Twilio (List Messages, on the fake)
and records the message Twilio holds instead of sending it again — so no SMS is sent twice,
and each such attempt shows it was uncertain.

On SQLite (one database file shared by the processes) and on PostgreSQL; the broker is Redis:
under CI=true an unreachable server fails the run."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.access.auth import create_api_key
from orchestrator.app_state import EXTENSION_KEY
from orchestrator.storage.models import Attempt
from providers.base import AttemptStatus
from tests.dispatch.test_brokers import purge_queue, require_tcp
from tests.fakes.twilio_fake import TwilioFake

pytestmark = [pytest.mark.slow, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
ORCHESTRATOR = str(Path(sys.executable).with_name("orchestrator"))
BROKER = "redis://127.0.0.1:6379/13"  # a database of its own: test_brokers purges /14
SID, TOKEN = "AC" + "2" * 32, "twilio-crash-token"
PHONE = "+447400123456"
N_MESSAGES = 40
CONCURRENCY = 4
SEND_DELAY = 0.25
LEASE_SECONDS = 3


@pytest.fixture
def celery_producer():
    from orchestrator.dispatch.celery_app import celery_app

    return celery_app


@pytest.fixture
def slow_twilio():
    with TwilioFake(SID, TOKEN) as fake:
        for _ in range(N_MESSAGES * 5):  # every send (and re-send) is slow
            fake.hang_next(SEND_DELAY)
        yield fake


class Worker:
    """`orchestrator worker` in a process group of its own, output to a log file."""

    def __init__(self, env: dict[str, str], log: Path, command: tuple[str, ...] = ()) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [ORCHESTRATOR, *(command or ("worker", "-c", str(CONCURRENCY)))], env=env, cwd=REPO,
            stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the group: children too, if it ever forks
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        if self.alive():
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
        self.kill(signal.SIGKILL)  # anything left in the group
        try:
            self.proc.wait(5)
        finally:
            self._out.close()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def wait_until(predicate, timeout: float, what: str, workers=()):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        ok, last = predicate()
        if ok:
            return last
        for w in workers:
            if not w.alive():
                raise AssertionError(f"worker {w.pid} exited ({w.proc.returncode}) while waiting for {what}:\n"
                                     f"{w.tail()}")
        time.sleep(0.1)
    logs = "\n".join(f"--- worker {w.pid}:\n{w.tail()}" for w in workers)
    raise AssertionError(f"{what}: not within {timeout} s; last state: {last}\n{logs}")


def sms_states(st, ids) -> dict[str, int]:
    with st.db.session() as s:
        rows = s.execute(select(Attempt.status, func.count()).where(
            Attempt.message_id.in_(ids), Attempt.channel == "sms").group_by(Attempt.status)).all()
    return {str(status): n for status, n in rows}


def api_and_worker_env(make_app, celery_producer, database_url, tmp_path, twilio_url: str, *, lease: int,
                       concurrency: int):
    """The API in this process (no worker, no sweeper yet) on the shared Redis broker, its queue
    emptied, and the environment for `orchestrator worker` processes on the same database."""
    env_extra = {
        "CELERY_BROKER_URL": BROKER, "EMBEDDED_WORKER": "false", "LEASE_SECONDS": str(lease),
        "SWEEP_INTERVAL_SECONDS": "0.5", "WORKER_CONCURRENCY": str(concurrency),
        "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_FROM_NUMBER": "+15005550006",
        "TWILIO_API_BASE_URL": twilio_url,
    }
    app = make_app(**env_extra)
    st = app.extensions[EXTENSION_KEY]
    st.clock = lambda: datetime.now(UTC)
    purge_queue(celery_producer)
    worker_env = {
        **os.environ, **env_extra, "DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
    }
    worker_env.pop("CI", None)
    return app, st, worker_env


def test_a_worker_killed_mid_dispatch_loses_nothing(database_url, celery_producer, make_app, slow_twilio,
                                                   tmp_path):
    require_tcp("Redis", BROKER)
    started = time.monotonic()
    app, st, worker_env = api_and_worker_env(make_app, celery_producer, database_url, tmp_path, slow_twilio.base_url,
                                             lease=LEASE_SECONDS, concurrency=CONCURRENCY)

    client = app.test_client()
    with st.db.session() as s:
        _, key = create_api_key(s, "crash", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    r = client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com", "phone": PHONE})
    assert r.status_code in (200, 201), r.get_json()

    workers: list[Worker] = []
    try:
        first = Worker(worker_env, tmp_path / "worker-1.log")
        workers.append(first)
        body_of: dict[str, str] = {}
        for i in range(N_MESSAGES):
            body = f"code {i:06d}"
            r = client.post("/v1/messages", headers=auth, json={
                "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high", "content": {"body": body}})
            assert r.status_code == 202, r.get_json()
            body_of[r.get_json()["id"]] = body
        ids = list(body_of)

        # Kill it once it is well into the batch: some sends done, CONCURRENCY in flight.
        wait_until(lambda: (len(slow_twilio.requests) >= 10, len(slow_twilio.requests)), 45,
                   "first worker sending", [first])
        first.kill(signal.SIGKILL)
        first.proc.wait(5)
        killed_at = time.monotonic()
        received_before_kill = len(slow_twilio.requests)
        with st.db.session() as s:
            in_flight = s.execute(select(Attempt.message_id).where(
                Attempt.message_id.in_(ids), Attempt.status == AttemptStatus.SENDING,
                Attempt.leased_by.like(f"%:{first.pid}:%"))).scalars().all()
        states_at_kill = sms_states(st, ids)
        print(f"\nkilled worker {first.pid} after {received_before_kill} requests at the fake; "
              f"SMS attempts {states_at_kill}; in flight (sending, its lease): {len(in_flight)}")
        assert states_at_kill.get("sent", 0) < N_MESSAGES, "the kill came too late to test anything"
        assert 1 <= len(in_flight) <= CONCURRENCY

        # Recovery: a second worker, and the sweeper (its real loop, with the DB lease).
        workers.append(Worker(worker_env, tmp_path / "worker-2.log"))
        st.dispatcher.start_background(worker=False, sweeper_thread=True)

        def all_sent():
            states = sms_states(st, ids)
            return states.get("sent", 0) == N_MESSAGES, states

        final = wait_until(all_sent, 60, "every SMS attempt sent after the crash", workers[1:])
        recovered_in = time.monotonic() - killed_at
        time.sleep(SEND_DELAY * 2)  # a stray re-send would reach the fake by now

        sends = collections.Counter(m["body"] for m in list(slow_twilio.messages.values()))
        duplicates = sum(sends.values()) - N_MESSAGES
        duplicated_bodies = {b for b, n in sends.items() if n > 1}
        print(f"recovered in {recovered_in:.1f} s (total {time.monotonic() - started:.1f} s); final {final}; "
              f"fake sends {sum(sends.values())} for {N_MESSAGES} messages: {duplicates} duplicate(s)")

        assert set(sends) == set(body_of.values()), "every message reached the provider"
        assert duplicates == 0, f"sent twice: {sorted(duplicated_bodies)}"
        with st.db.session() as s:
            attempts = s.scalars(select(Attempt).where(Attempt.message_id.in_(ids), Attempt.channel == "sms")).all()
            assert len(attempts) == N_MESSAGES
            assert all(a.status == AttemptStatus.SENT and a.send_count == 1 and a.lease_until is None
                       and a.provider_message_id in slow_twilio.messages for a in attempts)
            # What the dead worker held was taken over: claimed again under another lease, and
            # settled as an uncertain send (Twilio had it, or never got it).
            taken_over = [a for a in attempts if a.message_id in set(in_flight)]
            assert all(a.tries >= 2 and f":{first.pid}:" not in (a.leased_by or "") for a in taken_over)
            assert all(a.uncertain_count == 1 and a.uncertain_resolution in ("reconciled", "not_sent")
                       for a in taken_over), [(a.uncertain_count, a.uncertain_resolution) for a in taken_over]
            reconciled = sum(a.uncertain_resolution == "reconciled" for a in attempts)
            print(f"uncertain: {len(taken_over)} ({reconciled} reconciled with Twilio, "
                  f"{len(taken_over) - reconciled} never reached it)")
            assert not [a for a in attempts if a.message_id not in set(in_flight) and a.uncertain_at]
            # The email fallback is only released when SMS fails: none may have been sent.
            assert not s.scalar(select(func.count()).select_from(Attempt).where(
                Attempt.message_id.in_(ids), Attempt.channel == "email", Attempt.status == AttemptStatus.SENT))
    finally:
        for w in workers:
            w.stop()


def test_the_embedded_serve_killed_mid_send_sends_no_sms_twice(database_url, make_app, slow_twilio, tmp_path):
    """The embedded default — `orchestrator serve`: SQLite, in-process queue and workers —
    SIGKILLed while sends are in flight, then started again: what was queued in memory comes
    back through the sweeper, what was in flight is reconciled with Twilio."""
    import httpx

    from tests.live_server import free_port

    if not database_url.startswith("sqlite"):
        pytest.skip("the embedded default runs on SQLite")
    port = free_port()
    env = {
        **os.environ, "DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path), "PORT": str(port),
        "CELERY_BROKER_URL": "memory://", "LEASE_SECONDS": str(LEASE_SECONDS), "SWEEP_INTERVAL_SECONDS": "0.5",
        "WORKER_CONCURRENCY": str(CONCURRENCY), "TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_FROM_NUMBER": "+15005550006", "TWILIO_API_BASE_URL": slow_twilio.base_url, "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1",
    }
    env.pop("CI", None)
    env.pop("EMBEDDED_WORKER", None)
    st = make_app().extensions[EXTENSION_KEY]  # this process only reads the database
    with st.db.session() as s:
        _, key = create_api_key(s, "crash", ["send", "read", "recipients"])
    auth = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}"

    def up(server):
        def ready():
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200, "up"
            except httpx.HTTPError as exc:
                return False, type(exc).__name__
        wait_until(ready, 30, "serve answering", [server])

    servers = [Worker(env, tmp_path / "serve-1.log", ("serve",))]
    try:
        up(servers[0])
        r = httpx.put(f"{base}/v1/recipients/u-1", headers=auth, json={"phone": PHONE, "email": "a@example.com"})
        assert r.status_code in (200, 201), r.text
        body_of: dict[str, str] = {}
        states_at_kill: dict[str, int] = {}
        for i in range(N_MESSAGES):
            body = f"code {i:06d}"
            r = httpx.post(f"{base}/v1/messages", headers=auth, json={
                "recipient": {"user_id": "u-1"}, "category": "otp", "urgency": "high", "content": {"body": body}})
            assert r.status_code == 202, r.text
            body_of[r.json()["id"]] = body
            if not states_at_kill and (len(slow_twilio.requests) >= 6 or i == N_MESSAGES // 2):
                # Kill it mid-batch (the rest is posted to the restarted server), and restart.
                wait_until(lambda: (len(slow_twilio.requests) >= 2, len(slow_twilio.requests)), 30,
                           "serve sending", servers)
                servers[0].kill(signal.SIGKILL)
                servers[0].proc.wait(5)
                states_at_kill = sms_states(st, list(body_of))
                assert states_at_kill.get("sending", 0) >= 1, states_at_kill
                servers.append(Worker(env, tmp_path / "serve-2.log", ("serve",)))
                up(servers[1])
        ids = list(body_of)

        def all_sent():
            states = sms_states(st, ids)
            return states.get("sent", 0) == N_MESSAGES, states

        final = wait_until(all_sent, 60, "every SMS sent after the restart", servers[1:])
        time.sleep(SEND_DELAY * 2)
        sends = collections.Counter(m["body"] for m in list(slow_twilio.messages.values()))
        print(f"\nserve killed with SMS attempts {states_at_kill}; after restart {final}; "
              f"fake sends {sum(sends.values())} for {N_MESSAGES}")
        assert set(sends) == set(body_of.values()), "every message reached the provider"
        assert sum(sends.values()) == N_MESSAGES, f"sent twice: {[b for b, n in sends.items() if n > 1]}"
        with st.db.session() as s:
            attempts = s.scalars(select(Attempt).where(Attempt.message_id.in_(ids), Attempt.channel == "sms")).all()
            assert all(a.send_count == 1 and a.provider_message_id in slow_twilio.messages for a in attempts)
            uncertain = [a for a in attempts if a.uncertain_at]
            assert len(uncertain) == states_at_kill["sending"]
            assert all(a.uncertain_resolution in ("reconciled", "not_sent") for a in uncertain)
    finally:
        for server in servers:
            server.stop()


# A busy number: more sends to one phone, from one sender, than the reconciliation's old fixed
# look-back (the newest 200 messages) covered. Sends are slow (the fake answers each after
# BUSY_SEND_DELAY, creating the message half-way), BUSY_CONCURRENCY at a time.
BUSY_MESSAGES = 300
BUSY_CONCURRENCY = 50
BUSY_SEND_DELAY = 1.0
# Long enough that what the dead worker held comes back only after the rest is sent: by then
# Twilio lists ~250 newer messages to the number above each message the dead worker left.
BUSY_LEASE_SECONDS = 12


def test_a_crash_with_50_sms_in_flight_to_a_busy_number_sends_none_twice(database_url, celery_producer, make_app,
                                                                          tmp_path):
    """300 SMS to one number from one sender; the worker is SIGKILLed with ~50 in flight, each
    of which Twilio holds. The reconciliation reads every message since each send started
    (past the newest 200), so each is recorded as the message Twilio holds: 0 sent twice, 0
    lost, and none labelled `not_sent`."""
    require_tcp("Redis", BROKER)
    started = time.monotonic()
    fake = TwilioFake(SID, TOKEN, send_delay=BUSY_SEND_DELAY).start()
    app, st, worker_env = api_and_worker_env(make_app, celery_producer, database_url, tmp_path, fake.base_url,
                                             lease=BUSY_LEASE_SECONDS, concurrency=BUSY_CONCURRENCY)
    client = app.test_client()
    with st.db.session() as s:
        _, key = create_api_key(s, "crash", ["send", "read", "recipients", "templates:write"])
    auth = {"Authorization": f"Bearer {key}"}
    r = client.put("/v1/recipients/u-1", headers=auth, json={"email": "a@example.com", "phone": PHONE})
    assert r.status_code in (200, 201), r.get_json()
    r = client.post("/v1/templates", headers=auth, json={
        "id": "code", "default_locale": "en", "reason": "crash test", "channels": {"sms": {"text": "code {{ n }}"}}})
    assert r.status_code == 201, r.get_json()

    # One batch, a code each, all to u-1: queued in Redis before the first worker starts.
    r = client.post("/v1/messages/batch", headers=auth, json={
        "category": "otp", "urgency": "high", "template": {"id": "code"},
        "recipients": [{"recipient": {"user_id": "u-1"}, "variables": {"n": f"{i:06d}"}}
                       for i in range(BUSY_MESSAGES)]})
    assert r.status_code == 202 and r.get_json()["accepted"] == BUSY_MESSAGES, r.get_json()
    body_of = {item["id"]: f"code {item['index']:06d}" for item in r.get_json()["results"]}
    ids = list(body_of)
    posted_in = time.monotonic() - started

    workers: list[Worker] = []
    command = ("worker", "-c", str(BUSY_CONCURRENCY))
    try:
        first = Worker(worker_env, tmp_path / "worker-1.log", command)
        workers.append(first)
        # (Nearly) every thread mid-send: Twilio has its request, and will have its message.
        wait_until(lambda: (len(fake.requests) >= BUSY_CONCURRENCY - 5, len(fake.requests)), 45,
                   "first worker sending", [first])
        first.kill(signal.SIGKILL)
        first.proc.wait(5)
        killed_at = time.monotonic()
        with st.db.session() as s:
            in_flight = set(s.execute(select(Attempt.message_id).where(
                Attempt.message_id.in_(ids), Attempt.status == AttemptStatus.SENDING,
                Attempt.leased_by.like(f"%:{first.pid}:%"))).scalars())
        states_at_kill = sms_states(st, ids)
        print(f"\nposted {BUSY_MESSAGES} in {posted_in:.1f} s; killed worker {first.pid} after "
              f"{len(fake.requests)} requests at the fake; SMS attempts {states_at_kill}; in flight: {len(in_flight)}")
        assert BUSY_CONCURRENCY - 20 <= len(in_flight) <= BUSY_CONCURRENCY  # fewer if its threads were slow to start
        # What reached Twilio before the kill (it creates the message even if the sender is gone).
        reached = {r.form.get("Body") for r in list(fake.requests) if r.method == "POST"}

        workers.append(Worker(worker_env, tmp_path / "worker-2.log", command))
        st.dispatcher.start_background(worker=False, sweeper_thread=True)

        def all_sent():
            states = sms_states(st, ids)
            return states.get("sent", 0) == BUSY_MESSAGES, states

        final = wait_until(all_sent, 90, "every SMS attempt sent after the crash", workers[1:])
        recovered_in = time.monotonic() - killed_at
        time.sleep(BUSY_SEND_DELAY * 2)  # a stray re-send would reach the fake by now

        messages = list(fake.messages.values())
        sends = collections.Counter(m["body"] for m in messages)
        duplicated = sorted(b for b, n in sends.items() if n > 1)
        with st.db.session() as s:
            attempts = s.scalars(select(Attempt).where(Attempt.message_id.in_(ids), Attempt.channel == "sms")).all()
        taken_over = [a for a in attempts if a.message_id in in_flight]
        resolutions = collections.Counter(a.uncertain_resolution for a in taken_over)
        # How many messages to the number Twilio listed above each one the dead worker left,
        # when the next claim asked (uncertain_at): the old look-back read only 200.
        created = {m["sid"]: m["_created"] for m in messages}
        newer = [sum(1 for t in created.values()
                     if created[a.provider_message_id] < t <= a.uncertain_at.replace(tzinfo=UTC).timestamp())
                 for a in taken_over if a.provider_message_id in created and a.uncertain_at]
        print(f"recovered in {recovered_in:.1f} s (total {time.monotonic() - started:.1f} s); final {final}; "
              f"fake sends {len(messages)} for {BUSY_MESSAGES}: {len(duplicated)} duplicated; uncertain "
              f"{dict(resolutions)}; newer messages listed above them when asked: "
              f"{min(newer, default=0)}..{max(newer, default=0)}")

        assert not duplicated, f"sent twice: {duplicated}"
        assert set(sends) == set(body_of.values()), "every message reached the provider"
        assert len(attempts) == BUSY_MESSAGES
        assert all(a.status == AttemptStatus.SENT and a.send_count == 1 and a.lease_until is None
                   and a.provider_message_id in fake.messages for a in attempts)
        assert all(a.uncertain_count == 1 and f":{first.pid}:" not in (a.leased_by or "") for a in taken_over)
        # The label tells the truth: `not_sent` only for a send whose request never reached Twilio.
        assert all(a.uncertain_resolution == ("reconciled" if body_of[a.message_id] in reached else "not_sent")
                   for a in taken_over), [(body_of[a.message_id] in reached, a.uncertain_resolution)
                                          for a in taken_over]
        assert resolutions["reconciled"] >= len(taken_over) // 2, resolutions
        assert max(newer) > 200, "the crash did not leave a message below the newest 200: nothing tested"
        assert not [a for a in attempts if a.message_id not in in_flight and a.uncertain_at]
    finally:
        for w in workers:
            w.stop()
        fake.close()
