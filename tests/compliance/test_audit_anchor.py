"""Tamper evidence that holds against someone who can write the database but holds neither
the audit key nor the checkpoint file: each attack is made with SQL on the real table, then
found by `audit verify` (CLI exit codes) and GET /v1/audit/verify. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from orchestrator.cli import main
from orchestrator.config import ConfigError, Settings
from orchestrator.services import audit, audit_checkpoints, audit_key
from orchestrator.storage.models import AuditEntry
from tests.fakes.http_receiver import HttpReceiver

from .conftest import draft_text, go_live

NEW = "2099-01-01.1"


@pytest.fixture
def cli(database_url, tmp_path):
    """The CLI as an operator runs it beside the service: same database, key and data dir."""
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path)}

    def run(*args):
        return runner.invoke(main, list(args), env=env)

    return run


def rows(state):
    """The table as an attacker reads it (typed by the model's columns)."""
    e = AuditEntry
    with state.db.session() as s:
        return s.execute(select(e.id, e.at, e.actor, e.action, e.subject, e.detail, e.reason, e.prev_hash, e.hash)
                         .order_by(e.id)).all()


def api_verify(client, people):
    r = client.get("/v1/audit/verify", headers=people["carol"])
    assert r.status_code == 200
    return r.get_json()


def test_entries_are_keyed_and_a_checkpoint_anchors_them(client, people, state, cli, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    with state.db.session() as s:
        [entry] = audit.recent(s, 1)
        assert entry.key_id == audit.key_for(s).key_id
        # Not the plain SHA-256 anyone could compute.
        assert entry.hash != audit.compute_hash(entry.prev_hash, entry.at, entry.actor, entry.action, entry.subject,
                                                entry.detail, entry.reason)
    r = cli("audit", "checkpoint")
    assert r.exit_code == 0, r.output
    checkpoint = json.loads(r.output)
    assert checkpoint["count"] == len(rows(state)) and checkpoint["head_hash"] == rows(state)[-1].hash
    lines = (tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [checkpoint]
    assert stat.S_IMODE(os.stat(tmp_path / "audit-checkpoints.jsonl").st_mode) == 0o600
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and "1 checkpoint(s) match" in ok.output, ok.output
    body = api_verify(client, people)
    assert body["ok"] and body["anchor"]["status"] == "anchored"


def test_deleting_the_last_entries_is_found(client, people, state, cli):
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    last = rows(state)[-1].id
    with state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": last})
    r = cli("audit", "verify")
    assert r.exit_code == 1, r.output
    assert "deleted from the end" in r.output and f"entry {last}" in r.output
    body = api_verify(client, people)
    assert body["chain_ok"] is True  # the chain that is left is valid ...
    assert body["anchor"]["status"] == "tampered"  # ... the anchor says what is gone
    assert body["ok"] is False and "deleted from the end" in body["problem"] and "TAMPERED" in body["message"]


def test_an_edit_with_the_chain_recomputed_without_the_key_is_found(client, people, state, cli):
    """The audit's attack: edit a row, recompute every hash after it with compute_hash."""
    go_live(client, people, NEW, draft_text(NEW))
    all_rows = rows(state)
    target = next(r for r in all_rows if r.action == "policy.approve")
    with state.db.engine.begin() as conn:
        prev = None
        for r in all_rows:
            if r.id < target.id:
                prev = r.hash
                continue
            actor = "alice" if r.id == target.id else r.actor
            detail = r.detail
            new = audit.compute_hash(prev, r.at, actor, r.action, r.subject, detail, r.reason)
            conn.execute(text("UPDATE audit_log SET actor = :a, prev_hash = :p, hash = :h WHERE id = :id"),
                         {"a": actor, "p": prev, "h": new, "id": r.id})
            prev = new
    r = cli("audit", "verify")
    assert r.exit_code == 1 and f"entry {target.id}" in r.output and "altered" in r.output, r.output
    body = api_verify(client, people)
    assert body["ok"] is False and body["first_broken_id"] == target.id
    # Marking the rows unkeyed (as if from before keying) does not help either.
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET key_id = NULL WHERE id >= :id"), {"id": target.id})
    r = cli("audit", "verify")
    assert r.exit_code == 1 and "not keyed" in r.output, r.output


def test_a_rewrite_by_someone_holding_the_key_is_found_by_the_checkpoint(client, people, state, cli):
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    all_rows = rows(state)
    target = all_rows[-2]
    with state.db.session() as s:
        key = audit.key_for(s)
    with state.db.engine.begin() as conn:
        prev = all_rows[-3].hash
        for r in all_rows[-2:]:
            reason = "edited" if r.id == target.id else r.reason
            detail = r.detail
            new = audit.keyed_hash(key, prev, r.at, r.actor, r.action, r.subject, detail, reason)
            conn.execute(text("UPDATE audit_log SET reason = :r, prev_hash = :p, hash = :h WHERE id = :id"),
                         {"r": reason, "p": prev, "h": new, "id": r.id})
            prev = new
    r = cli("audit", "verify")
    assert r.exit_code == 1 and "rewritten" in r.output, r.output


def test_a_forged_checkpoint_is_found(client, people, state, cli, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    path = tmp_path / "audit-checkpoints.jsonl"
    forged = json.loads(path.read_text())
    forged["count"] -= 1
    with path.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    r = cli("audit", "verify")
    assert r.exit_code == 1 and "not signed" in r.output, r.output
    path.write_text(path.read_text().splitlines()[0] + "\nnot json\n")
    r = cli("audit", "verify")
    assert r.exit_code == 1 and "line 2 is not a checkpoint" in r.output, r.output


def test_a_missing_or_stale_checkpoint_is_reported(client, people, state, clock, settings_env, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    settings = Settings.from_env({**settings_env, "AUDIT_CHECKPOINT_INTERVAL_SECONDS": "60",
                                  "AUDIT_CHECKPOINT_STALE_INTERVALS": "2"})
    with state.db.session() as s:
        _, anchor = audit_checkpoints.check(s, settings, clock.now + timedelta(seconds=100))
        assert anchor.status == "not_due" and anchor.exit_code == 0
        _, anchor = audit_checkpoints.check(s, settings, clock.now + timedelta(seconds=121))
        assert anchor.status == "missing" and anchor.exit_code == 3 and "no checkpoint" in anchor.problem
    assert audit_checkpoints.maybe_write(settings, state.db, clock.now) is not None
    assert audit_checkpoints.maybe_write(settings, state.db, clock.now + timedelta(seconds=59)) is None
    with state.db.session() as s:
        _, anchor = audit_checkpoints.check(s, settings, clock.now + timedelta(seconds=120))
        assert anchor.status == "anchored"
        _, anchor = audit_checkpoints.check(s, settings, clock.now + timedelta(seconds=121))
        assert anchor.status == "stale" and anchor.exit_code == 3 and "scheduler" in anchor.problem
    assert audit_checkpoints.maybe_write(settings, state.db, clock.now + timedelta(seconds=60)) is not None
    assert len((tmp_path / "audit-checkpoints.jsonl").read_text().splitlines()) == 2


def test_the_cli_exit_code_for_a_stale_anchor_is_3(client, people, state, cli, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))  # entries at the test clock: months ago
    r = cli("audit", "verify")
    assert r.exit_code == 3 and "not anchored (missing)" in r.output, r.output


def test_checkpoints_go_to_the_log_and_the_webhook(state, settings_env, clock, caplog):
    with HttpReceiver() as receiver:
        settings = Settings.from_env({**settings_env, "AUDIT_CHECKPOINT_WEBHOOK_URL": receiver.url})
        with caplog.at_level("INFO", logger="orchestrator.audit"):
            checkpoint = audit_checkpoints.write(settings, state.db, clock.now)
        [(_, body)] = receiver.received
        assert json.loads(body) == checkpoint.to_dict()
        record = next(r for r in caplog.records if r.getMessage() == "audit checkpoint")
        assert record.event == "audit.checkpoint" and record.checkpoint == checkpoint.to_dict()
        receiver.answer_next(500)
        audit_checkpoints.write(settings, state.db, clock.now)  # a failing webhook only logs


def test_the_sweeper_loop_writes_checkpoints(make_app, tmp_path):
    import time

    from orchestrator.app_state import EXTENSION_KEY

    app = make_app(SWEEP_INTERVAL_SECONDS="0.05", AUDIT_CHECKPOINT_INTERVAL_SECONDS="1")
    st = app.extensions[EXTENSION_KEY]
    st.dispatcher.start_background(worker=False, sweeper_thread=True)
    path = tmp_path / "audit-checkpoints.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.05)
    assert path.exists() and json.loads(path.read_text().splitlines()[0])["count"] >= 1


# -- the key ----------------------------------------------------------------------------------------

def test_the_key_file_is_generated_private_and_reused(tmp_path):
    settings = Settings.from_env({"ORCHESTRATOR_DATA_DIR": str(tmp_path / "data")})
    first = audit_key.load(settings)
    path = tmp_path / "data" / "audit.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) == 64
    assert audit_key.load(settings).key_id == first.key_id
    assert path.read_text().strip() not in repr(first) and first.secret.hex() not in repr(first)


def test_the_key_is_derived_with_its_own_label():
    raw = "x" * 40
    key = audit_key.derive(raw, "test")
    import hashlib
    import hmac

    assert key.secret != raw.encode() and key.mac(b"m") != hmac.new(raw.encode(), b"m", hashlib.sha256).hexdigest()


@pytest.mark.parametrize(("env", "fragment"), [
    ({"AUDIT_KEY": "short"}, "AUDIT_KEY must be at least 32 characters"),
    ({"AUDIT_KEY": " " + "k" * 40}, "no surrounding spaces"),
])
def test_an_invalid_configured_key_is_one_clear_line(env, fragment, tmp_path):
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)
    r = CliRunner().invoke(main, ["audit", "verify"], env={**env, "ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 2 and fragment in r.output and "Traceback" not in r.output


def test_an_unusable_key_file_is_one_clear_line(tmp_path):
    path = tmp_path / "audit.key"
    settings = Settings.from_env({"AUDIT_KEY_FILE": str(path)})
    path.write_text("k" * 64)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="accessible to other users.*chmod 600"):
        audit_key.load(settings)
    path.chmod(0o600)
    path.write_text("tooshort")
    with pytest.raises(ConfigError, match="fewer than 32"):
        audit_key.load(settings)
    r = CliRunner().invoke(main, ["audit", "verify"], env={"AUDIT_KEY": "", "AUDIT_KEY_FILE": str(path),
                                                           "ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 2 and "fewer than 32" in r.output


def test_a_wrong_key_is_named(client, people, state, cli, database_url, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    r = CliRunner().invoke(main, ["audit", "verify"], env={"DATABASE_URL": database_url, "AUDIT_KEY": "w" * 40,
                                                           "ORCHESTRATOR_DATA_DIR": str(tmp_path)})
    assert r.exit_code == 1 and "another key" in r.output


# -- upgrading from the unkeyed chain ----------------------------------------------------------------

def _make_legacy(state) -> list:
    """Rewrites the log as the previous version wrote it: plain SHA-256, no key id. Returns
    the rows as they were, and the legacy head hash."""
    all_rows = rows(state)
    with state.db.engine.begin() as conn:
        prev = audit.GENESIS_HASH
        for r in all_rows:
            detail = r.detail
            new = audit.compute_hash(prev, r.at, r.actor, r.action, r.subject, detail, r.reason)
            conn.execute(text("UPDATE audit_log SET key_id = NULL, prev_hash = :p, hash = :h WHERE id = :id"),
                         {"p": prev, "h": new, "id": r.id})
            prev = new
    return all_rows, prev


def test_legacy_entries_are_rekeyed_at_start_and_the_rekey_is_recorded(client, people, state, settings_env):
    go_live(client, people, NEW, draft_text(NEW))
    legacy, legacy_head = _make_legacy(state)
    assert api_verify(client, people)["ok"] is False  # unkeyed entries are not accepted as they are
    audit.install_audit_key(Settings.from_env(settings_env), state.db)
    body = api_verify(client, people)
    assert body["ok"] is True and body["checked"] == len(legacy) + 1
    with state.db.session() as s:
        [rekey] = audit.recent(s, 1)
        assert rekey.action == "audit.rekey" and rekey.detail["entries"] == len(legacy)
        assert rekey.detail["legacy_head_hash"] == legacy_head
    audit.install_audit_key(Settings.from_env(settings_env), state.db)  # once only
    assert api_verify(client, people)["checked"] == len(legacy) + 1


def test_a_tampered_legacy_chain_is_not_laundered_by_the_rekey(client, people, state, settings_env):
    go_live(client, people, NEW, draft_text(NEW))
    legacy, _ = _make_legacy(state)
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = :id"), {"id": legacy[1].id})
    audit.install_audit_key(Settings.from_env(settings_env), state.db)
    body = api_verify(client, people)
    assert body["ok"] is False and body["first_broken_id"] == legacy[0].id and "not keyed" in body["problem"]


def test_an_unwritable_checkpoint_file_is_an_error_once_per_interval(state, settings_env, clock, tmp_path, caplog):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    settings = Settings.from_env({**settings_env, "AUDIT_CHECKPOINT_FILE": str(blocked / "cp.jsonl"),
                                  "AUDIT_CHECKPOINT_INTERVAL_SECONDS": "60"})
    with caplog.at_level("ERROR", logger="orchestrator.audit"):
        assert audit_checkpoints.maybe_write(settings, state.db, clock.now) is None
        assert audit_checkpoints.maybe_write(settings, state.db, clock.now + timedelta(seconds=30)) is None
    assert sum("could not be written" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(OSError):
        audit_checkpoints.write(settings, state.db, clock.now)
    r = CliRunner().invoke(main, ["audit", "checkpoint"], env={"DATABASE_URL": settings_env["DATABASE_URL"],
                                                               "AUDIT_CHECKPOINT_FILE": str(blocked / "cp.jsonl")})
    assert r.exit_code == 2 and "AUDIT_CHECKPOINT_FILE" in r.output


def test_an_unreadable_checkpoint_file_is_a_missing_anchor(client, people, state, settings_env, clock, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    (tmp_path / "dir.jsonl").mkdir()
    settings = Settings.from_env({**settings_env, "AUDIT_CHECKPOINT_FILE": str(tmp_path / "dir.jsonl")})
    with state.db.session() as s:
        chain, anchor = audit_checkpoints.check(s, settings, clock.now)
    assert chain.ok and anchor.status == "missing" and "cannot be read" in anchor.problem and anchor.exit_code == 3


def test_processes_starting_together_agree_on_one_generated_key(tmp_path):
    """Several processes (serve --workers N) create the key file at once: one key wins and
    none reads a half-written file."""
    import subprocess
    import sys

    code = ("import sys; from orchestrator.config import Settings; from orchestrator.services import audit_key; "
            "print(audit_key.load(Settings.from_env({'AUDIT_KEY_FILE': sys.argv[1]})).key_id)")
    path = tmp_path / "shared" / "audit.key"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(ids) == 1 and len(next(iter(ids))) == 16
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no temporary file left
