"""Tamper evidence that holds against someone who can write the database but holds neither
the audit key nor the checkpoint file: each attack is made with SQL on the real table, then
found by `audit verify` (CLI exit codes) and GET /v1/audit/verify. SQLite and PostgreSQL.
Verification writes nothing; re-keying entries from before keying is one explicit command,
refused once the log has been keyed; a checkpoint file deleted or truncated after checkpoints
were written is tampering; an off-host anchor copy catches what the database's writer can
erase on the host."""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from orchestrator.audit import checkpoints as audit_checkpoints
from orchestrator.audit import key as audit_key
from orchestrator.audit import log as audit
from orchestrator.cli.main import main
from orchestrator.config import ConfigError, Settings
from orchestrator.logs import JsonFormatter
from orchestrator.storage import migrate
from orchestrator.storage.models import AuditEntry, Base
from tests.fakes.http_receiver import HttpReceiver

from .conftest import draft_text, go_live

NEW = "2099-01-01.1"


@pytest.fixture
def cli(database_url, tmp_path):
    """The CLI as an operator runs it beside the service: same database, key and data dir."""
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path)}

    def run(*args, env_extra=None):
        return runner.invoke(main, list(args), env={**env, **(env_extra or {})})

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
    deadline = time.monotonic() + 30  # the loop runs every 0.05 s; 30 s is room for a loaded box

    def first_line() -> str:  # the file can exist a moment before its first line is complete
        text = path.read_text() if path.exists() else ""
        return text.split("\n", 1)[0] if "\n" in text else ""

    while time.monotonic() < deadline and not first_line():
        time.sleep(0.05)
    assert first_line(), "no checkpoint written"
    assert json.loads(first_line())["count"] >= 1


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


# -- upgrading from the unkeyed chain; the audit's forgery ---------------------------------------

def _rewrite_as_legacy(state) -> tuple[list, str]:
    """Rewrites the log as the version before keying wrote it (plain SHA-256, no key id), as
    anyone who can write the table can. Returns the rows as they are now, and the head hash."""
    with state.db.engine.begin() as conn:
        prev = audit.GENESIS_HASH
        for r in rows(state):
            new = audit.compute_hash(prev, r.at, r.actor, r.action, r.subject, r.detail, r.reason)
            conn.execute(text("UPDATE audit_log SET key_id = NULL, prev_hash = :p, hash = :h WHERE id = :id"),
                         {"p": prev, "h": new, "id": r.id})
            prev = new
    return rows(state), prev


def _upgrade_from_before_keying(state) -> tuple[list, str]:
    """A database of the version before keying, upgraded: back to 0010 (no audit_state), the
    log as that version wrote it, then migrated to head as a start does (0011 sees a log of
    unkeyed entries only)."""
    migrate.downgrade(state.db, "0010")
    try:
        legacy = _rewrite_as_legacy(state)
    finally:
        migrate.upgrade(state.db)
    return legacy


def _forge(state) -> list:
    """The audit's forgery: delete the newest entry, recompute the chain with plain SHA-256
    as 'legacy' unkeyed entries."""
    with state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)"))
    return _rewrite_as_legacy(state)[0]


def test_an_upgrade_from_before_keying_is_rekeyed_once_by_the_explicit_command(client, people, state, cli,
                                                                              settings_env):
    go_live(client, people, NEW, draft_text(NEW))
    legacy, legacy_head = _upgrade_from_before_keying(state)
    with state.db.session() as s:
        assert audit.state(s).rekey_pending
    # Until the operator re-keys: the service does not start, and nothing more is audited
    # (a keyed entry after them would make the re-key impossible).
    with pytest.raises(ConfigError, match="audit rekey"):
        audit.install_audit_key(Settings.from_env(settings_env), state.db)
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text("2099-02-01.1"),
                                                                    "reason": "x"})
    assert r.status_code == 503 and "audit rekey" in r.get_json()["error"]["message"], r.get_json()
    r = cli("audit", "verify")
    assert r.exit_code == 1 and "from before keying" in r.output and "audit rekey" in r.output, r.output
    assert rows(state) == legacy  # verify re-keyed nothing

    r = cli("audit", "rekey", "--reason", "upgrade to keyed audit")
    assert r.exit_code == 0 and f"re-keyed {len(legacy)} entries" in r.output, r.output
    with state.db.session() as s:
        [rekey] = audit.recent(s, 1)
        assert (rekey.actor, rekey.action, rekey.reason) == ("cli", "audit.rekey", "upgrade to keyed audit")
        assert rekey.detail["entries"] == len(legacy) and rekey.detail["legacy_head_hash"] == legacy_head
        assert audit.state(s).keyed_since is not None
    assert cli("audit", "checkpoint").exit_code == 0
    ok = cli("audit", "verify")
    assert ok.exit_code == 0 and f"{len(legacy) + 1} entries verified" in ok.output, ok.output
    audit.install_audit_key(Settings.from_env(settings_env), state.db)  # starts now
    before = rows(state)
    again = cli("audit", "rekey", "--reason", "again")
    assert again.exit_code == 1 and "refused" in again.output and rows(state) == before, again.output


def test_a_tampered_legacy_chain_is_not_laundered_by_the_rekey(client, people, state, cli):
    go_live(client, people, NEW, draft_text(NEW))
    legacy, _ = _upgrade_from_before_keying(state)
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = :id"), {"id": legacy[1].id})
    r = cli("audit", "rekey", "--reason", "upgrade")
    assert r.exit_code == 1 and f"broken at entry {legacy[1].id}" in r.output, r.output
    body = api_verify(client, people)
    assert body["ok"] is False and body["first_broken_id"] == legacy[0].id and "not keyed" in body["problem"]


@pytest.mark.parametrize("checkpoint_file", ["kept", "deleted"])
def test_the_legacy_forgery_fails_verify_with_or_without_the_checkpoint_file(client, people, state, cli, tmp_path,
                                                                            checkpoint_file):
    """Issue #19 §4: verify used to re-key the forged chain with the real key, then call it intact."""
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    assert cli("audit", "verify").exit_code == 0
    forged = _forge(state)
    if checkpoint_file == "deleted":
        (tmp_path / "audit-checkpoints.jsonl").unlink()
    for _ in range(2):  # the first run re-keys nothing for the second to find intact
        r = cli("audit", "verify")
        assert r.exit_code == 1 and f"TAMPERED at entry {forged[0].id}" in r.output, r.output
        assert "not keyed" in r.output and "keyed since" in r.output
    assert rows(state) == forged
    body = api_verify(client, people)
    assert body["ok"] is False and body["first_broken_id"] == forged[0].id
    r = cli("audit", "rekey", "--reason", "looks like an upgrade")
    assert r.exit_code == 1 and "refused" in r.output and "has been keyed" in r.output, r.output
    assert rows(state) == forged


def test_rekey_is_refused_once_the_log_has_been_keyed(client, people, state, cli, tmp_path):
    """Whatever an intruder deletes or resets in the database, one record of the keyed log
    left (the audit_state row, a keyed entry, a checkpoint in the file or the anchor copy)
    refuses the re-key; the database is left as it was."""
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    anchor = tmp_path / "shipped.jsonl"
    anchor.write_text((tmp_path / "audit-checkpoints.jsonl").read_text())
    with_anchor = {"AUDIT_ANCHOR_FILE": str(anchor)}

    def refused(fragment, env_extra=None):
        before = rows(state)
        r = cli("audit", "rekey", "--reason", "x", env_extra=env_extra)
        assert r.exit_code == 1 and "refused" in r.output and fragment in r.output, r.output
        assert rows(state) == before

    refused("has been keyed since")
    _forge(state)  # no keyed entry left: the audit_state row still says keyed
    refused("has been keyed since")
    with state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_state"))  # no row reads as keyed
    refused("has been keyed")
    with state.db.engine.begin() as conn:  # the row as migration 0011 writes it for a log awaiting its re-key
        conn.execute(text("INSERT INTO audit_state (id, keyed_since, checkpoints_written) VALUES (1, NULL, 1)"))
    refused("1 checkpoint(s) of the keyed log")
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_state SET checkpoints_written = 0"))
    refused("audit-checkpoints.jsonl holds checkpoints")
    (tmp_path / "audit-checkpoints.jsonl").unlink()
    refused("anchor copy", with_anchor)  # what the database's writer cannot reach
    r = cli("audit", "verify", "--anchor", str(anchor))
    assert r.exit_code == 1 and "TAMPERED" in r.output, r.output


def _snapshot(state) -> dict:
    """Every row of every table, and the schema revision."""
    with state.db.engine.connect() as conn:
        tables = {t.name: sorted(map(repr, conn.execute(t.select()).all())) for t in Base.metadata.sorted_tables}
        tables["alembic_version"] = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    return tables


def _files(path) -> dict:
    """The data directory's files (SQLite's own -wal and -shm aside) with size and mtime."""
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in path.rglob("*")
            if p.is_file() and not p.name.startswith("orchestrator.sqlite3")}


def test_verification_writes_nothing(client, people, state, cli, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    assert cli("audit", "checkpoint").exit_code == 0
    anchor = tmp_path / "shipped.jsonl"
    anchor.write_text((tmp_path / "audit-checkpoints.jsonl").read_text())
    # The state in which verify used to write the most: a log awaiting its re-key.
    _upgrade_from_before_keying(state)
    db_before, files_before = _snapshot(state), _files(tmp_path)
    assert cli("audit", "verify").exit_code == 1
    assert cli("audit", "verify", "--anchor", str(anchor)).exit_code == 1
    assert cli("audit", "list").exit_code == 0
    assert api_verify(client, people)["ok"] is False
    assert _snapshot(state) == db_before and _files(tmp_path) == files_before
    # No key is generated: without the service's key there is nothing to verify with.
    r = cli("audit", "verify", env_extra={"AUDIT_KEY": "", "AUDIT_KEY_FILE": str(tmp_path / "none" / "audit.key")})
    assert r.exit_code == 2 and "does not exist" in r.output and not (tmp_path / "none").exists(), r.output
    # Nor is the schema migrated: a database behind the code is refused as it is.
    migrate.downgrade(state.db, "0010")
    try:
        r = cli("audit", "verify")
        assert r.exit_code == 2 and "db upgrade" in r.output, r.output
        with state.db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0010"
    finally:
        migrate.upgrade(state.db)


def test_the_read_only_session_is_enforced_by_the_database(database_url):
    from orchestrator.storage.db import Database

    db = Database(database_url)  # a pool of one connection, so the next session gets the same
    try:
        with pytest.raises(Exception, match="(?i)read.only|readonly"), db.read_only_session() as s:
            used = s.connection().connection.dbapi_connection
            s.execute(text("DELETE FROM audit_log"))
        with db.session() as s:  # the pooled connection writes again
            assert s.connection().connection.dbapi_connection is used
            s.execute(text("UPDATE audit_log SET actor = actor WHERE id = -1"))
    finally:
        db.dispose()


def test_a_deleted_or_truncated_checkpoint_file_is_tampering(client, people, state, cli, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    path = tmp_path / "audit-checkpoints.jsonl"
    assert cli("audit", "checkpoint").exit_code == 0
    assert cli("audit", "checkpoint").exit_code == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 2

    def tampered(fragment):
        r = cli("audit", "verify")
        assert r.exit_code == 1 and "TAMPERED" in r.output and fragment in r.output, r.output

    path.unlink()
    tampered("is missing, but 2 checkpoint(s) were written")
    body = api_verify(client, people)
    assert body["ok"] is False and body["anchor"]["status"] == "tampered" and "missing" in body["problem"]
    path.write_text(lines[0] + "\n")
    tampered("holds 1 checkpoint(s), but 2 were written")
    path.write_text("")
    tampered("holds 0 checkpoint(s), but 2 were written")
    path.write_text(lines[0] + "\n" + lines[0] + "\n")
    tampered("the newest checkpoint written")
    path.write_text(lines[0] + "\n" + lines[1][:40])
    tampered("line 2 is not a checkpoint")
    path.write_text("\n".join(lines) + "\n")
    assert cli("audit", "verify").exit_code == 0
    with state.db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_state SET last_checkpoint = '\"x\"'"))
    tampered("the newest checkpoint recorded in the database is not a checkpoint")
    assert api_verify(client, people)["anchor"]["status"] == "tampered"


def test_verify_holds_the_log_to_an_off_host_anchor_copy(client, people, state, cli, settings_env, tmp_path, caplog):
    """The checkpoints shipped off the host (the webhook sink's copy, or the service's JSON log)
    catch an intruder who deletes the newest entry and, on the host, every trace of the
    checkpoints: the file and the database's record of them."""
    from datetime import UTC, datetime

    go_live(client, people, NEW, draft_text(NEW))
    sink = tmp_path / "shipped" / "checkpoints.jsonl"
    shipped_log = tmp_path / "shipped" / "service.log"
    sink.parent.mkdir()
    with HttpReceiver() as receiver:
        settings = Settings.from_env({**settings_env, "AUDIT_CHECKPOINT_WEBHOOK_URL": receiver.url})
        with caplog.at_level("INFO", logger="orchestrator.audit"):
            audit_checkpoints.write(settings, state.db, datetime.now(UTC))
        sink.write_bytes(b"".join(body + b"\n" for _, body in receiver.received))  # as a sink appends them
    formatter = JsonFormatter()
    shipped_log.write_text("not json: a line of some other program\n"
                           + "".join(formatter.format(r) + "\n" for r in caplog.records))
    ok = cli("audit", "verify", "--anchor", str(sink))
    assert ok.exit_code == 0 and "(1 in the anchor copy)" in ok.output, ok.output

    newest = rows(state)[-1].id
    with state.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": newest})
        conn.execute(text("UPDATE audit_state SET checkpoints_written = 0, last_checkpoint = NULL"))
    (tmp_path / "audit-checkpoints.jsonl").unlink()
    on_host = cli("audit", "verify")
    assert on_host.exit_code == 3 and "no checkpoint" in on_host.output, on_host.output  # all the host can tell
    for env_extra, args in (({}, ("--anchor", str(sink))), ({"AUDIT_ANCHOR_FILE": str(sink)}, ()),
                            ({"AUDIT_ANCHOR_FILE": str(shipped_log)}, ())):
        r = cli("audit", "verify", *args, env_extra=env_extra)
        assert r.exit_code == 1 and "deleted from the end" in r.output and f"entry {newest}" in r.output, r.output
    r = cli("audit", "verify", "--anchor", str(tmp_path / "not-shipped.jsonl"))
    assert r.exit_code == 3 and "cannot be read" in r.output, r.output
    sink.write_text(sink.read_text() + json.dumps({"mac": "00", "count": "many"}) + "\n")
    r = cli("audit", "verify", "--anchor", str(sink))
    assert r.exit_code == 1 and "anchor copy line 2 is not a checkpoint" in r.output, r.output


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

    code = ("import sys; from orchestrator.config import Settings; from orchestrator.audit import key as audit_key; "
            "print(audit_key.load(Settings.from_env({'AUDIT_KEY_FILE': sys.argv[1]})).key_id)")
    path = tmp_path / "shared" / "audit.key"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
             for _ in range(6)]
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(ids) == 1 and len(next(iter(ids))) == 16
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no temporary file left
