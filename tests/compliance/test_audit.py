"""The audit log: every policy change and key change is recorded, the hash chain verifies,
and a row altered behind the service's back is found (API and CLI)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import text

from orchestrator.cli.main import main

from .conftest import DEFAULT_VERSION, draft_text, go_live

NEW = "2099-01-01.1"


def test_policy_changes_are_audited_and_chain_verifies(client, people):
    go_live(client, people, NEW, draft_text(NEW))
    entries = client.get("/v1/audit", headers=people["carol"]).get_json()["entries"]
    actions = [(e["actor"], e["action"], e["subject"]) for e in reversed(entries)]
    assert actions[0][1] == "policy.seed"
    assert actions[-4:] == [("alice", "policy.draft", f"policy:{NEW}"), ("bob", "policy.approve", f"policy:{NEW}"),
                            ("bob", "policy.retire", f"policy:{DEFAULT_VERSION}"),
                            ("bob", "policy.activate", f"policy:{NEW}")]
    assert entries[0]["reason"] == "go" and entries[0]["hash"] and entries[0]["prev_hash"] == entries[1]["hash"]
    r = client.get("/v1/audit/verify", headers=people["carol"])
    assert r.status_code == 200 and r.get_json()["ok"] is True and r.get_json()["checked"] == len(entries)


def test_tampering_is_reported_by_api_and_cli(client, people, state, database_url, tmp_path):
    go_live(client, people, NEW, draft_text(NEW))
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path)}
    assert runner.invoke(main, ["audit", "checkpoint"], env=env).exit_code == 0
    ok = runner.invoke(main, ["audit", "verify"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output

    with state.db.engine.begin() as conn:
        target = conn.execute(text("SELECT id FROM audit_log WHERE action = 'policy.approve'")).scalar_one()
        conn.execute(text("UPDATE audit_log SET actor = 'alice' WHERE id = :id"), {"id": target})

    body = client.get("/v1/audit/verify", headers=people["carol"]).get_json()
    assert body["ok"] is False and body["first_broken_id"] == target
    bad = runner.invoke(main, ["audit", "verify"], env=env)
    assert bad.exit_code == 1
    assert f"entry {target}" in bad.output and "TAMPERED" in bad.output


def test_deleting_an_entry_breaks_the_chain(client, people, state):
    go_live(client, people, NEW, draft_text(NEW))
    with state.db.engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM audit_log ORDER BY id"))]
        conn.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": ids[1]})
    body = client.get("/v1/audit/verify", headers=people["carol"]).get_json()
    assert body["ok"] is False and body["first_broken_id"] == ids[2]


def test_key_creation_and_scope_change_are_audited_with_actor_cli(client, people, database_url, tmp_path):
    runner = CliRunner()
    env = {"DATABASE_URL": database_url, "ORCHESTRATOR_DATA_DIR": str(tmp_path)}
    r = runner.invoke(main, ["keys", "create", "--name", "erin", "--scopes", "send", "--reason", "new team"],
                      env=env)
    assert r.exit_code == 0, r.output
    key_id = json.loads(r.output[r.output.index("{"):r.output.rindex("}") + 1])["id"]
    r = runner.invoke(main, ["keys", "set-scopes", key_id, "--scopes", "send,read", "--reason", "needs reads"],
                      env=env)
    assert r.exit_code == 0, r.output
    entries = client.get("/v1/audit", headers=people["carol"]).get_json()["entries"]
    scopes, create = entries[0], entries[1]
    assert (create["actor"], create["action"], create["subject"]) == ("cli", "key.create", f"key:{key_id}")
    assert create["detail"]["scopes"] == ["send"] and create["reason"] == "new team"
    assert (scopes["action"], scopes["detail"]["after"], scopes["reason"]) == ("key.scopes", ["send", "read"],
                                                                               "needs reads")
    assert runner.invoke(main, ["audit", "checkpoint"], env=env).exit_code == 0
    assert runner.invoke(main, ["audit", "verify"], env=env).exit_code == 0
