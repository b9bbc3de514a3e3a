"""The `orchestrator` command line, run in-process with click's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import policies
from orchestrator.cli.main import main


@pytest.fixture
def run(settings_env):
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(main, list(args), env=settings_env, input=input, catch_exceptions=False)

    return invoke


def test_keys_create_prints_a_working_key_once(run, client):
    result = run("keys", "create", "--name", "billing", "--scopes", "send,read")
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["scopes"] == ["send", "read"]
    r = client.get("/v1/messages/nope", headers={"Authorization": f"Bearer {created['key']}"})
    assert r.status_code == 404  # authenticated (not 401), just no such message


def test_keys_create_rejects_unknown_scopes(run):
    result = run("keys", "create", "--name", "x", "--scopes", "send,superuser")
    assert result.exit_code != 0
    assert "superuser" in result.output


def test_db_upgrade_is_idempotent(run):
    assert run("db", "upgrade").exit_code == 0
    assert run("db", "upgrade").exit_code == 0


def test_policy_lint_accepts_the_default_and_names_the_broken_rule(run, tmp_path):
    default = Path(policies.CATEGORIES_DEFAULT_PATH)
    assert run("policy", "lint", str(default)).exit_code == 0
    broken = default.read_text(encoding="utf-8").replace("then: {exclude: push}", "then: {exclude: pigeon}", 1)
    assert broken != default.read_text(encoding="utf-8")
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    result = run("policy", "lint", str(path))
    assert result.exit_code == 1
    assert "push-needs-device" in result.output and "pigeon" in result.output


def test_policy_explain_prints_a_plan_with_reasons(run):
    body = {"message": {"category": "otp", "urgency": "high", "body": "123456"},
            "facts": {"user_id": "u", "phone": "+447400123456", "email": "u@example.com"}}
    result = run("policy", "explain", "--now", "2026-03-10T12:00:00+00:00", input=json.dumps(body))
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["steps"][0]["channel"] == "sms"
    assert all(e["rule"] and e["reason"] for e in plan["excluded"])


def test_policy_test_runs_the_golden_table(run):
    result = run("policy", "test")
    assert result.exit_code == 0, result.output
    passed = int(result.stdout.split(" passed")[0].split()[-1])
    assert passed >= 40
