"""`orchestrator templates …`, run in-process with click's runner against the same
database the API uses."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.audit import log as audit
from orchestrator.cli.main import main
from tests.templates.test_templates_api import ORDER, VARS


@pytest.fixture
def run(settings_env):
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, list(args), env=settings_env, catch_exceptions=False)

    return invoke


def test_create_version_show_list_and_preview(run, tmp_path, client, auth, state):
    path = tmp_path / "order.yaml"
    path.write_text(yaml.safe_dump(ORDER, allow_unicode=True), encoding="utf-8")
    created = run("templates", "create", str(path), "--reason", "from the CLI")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["version"] == 1
    second = dict(ORDER, channels={"sms": {"text": "v2 {{ name }} {{ order_id }}"}})
    path.write_text(yaml.safe_dump(second, allow_unicode=True), encoding="utf-8")
    versioned = run("templates", "version", "order_shipped", str(path), "--reason", "shorter")
    assert versioned.exit_code == 0, versioned.output
    assert json.loads(versioned.stdout)["version"] == 2
    shown = json.loads(run("templates", "show", "order_shipped", "--version", "1").stdout)
    assert shown["channels"]["sms"] == ORDER["channels"]["sms"]
    listed = [json.loads(line) for line in run("templates", "list").stdout.splitlines()]
    assert [(t["id"], t["latest_version"]) for t in listed] == [("order_shipped", 2)]
    preview = run("templates", "preview", "order_shipped", "--version", "1", "--locale", "ko-KR",
                  "--variables", json.dumps(VARS))
    assert preview.exit_code == 0, preview.output
    assert json.loads(preview.stdout)["channels"]["sms"]["text"] == "Ada님, 주문 A-17이(가) 발송되었습니다."
    # The API sees what the CLI saved, and the audit log has both changes by `cli`.
    assert client.get("/v1/templates/order_shipped", headers=auth).get_json()["latest_version"] == 2
    with state.db.session() as s:
        entries = audit.recent(s, subject="template:order_shipped")
        assert {(e.actor, e.action, e.reason) for e in entries} == {
            ("cli", "template.create", "from the CLI"), ("cli", "template.version", "shorter")}


def test_errors_are_one_line_naming_the_field(run, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**ORDER, "channels": {"sms": {"text": "{{ ''.__class__ }}"}}}))
    bad = run("templates", "create", str(path))
    assert bad.exit_code == 2 and "channels.sms.text" in bad.output and "__class__" in bad.output
    path.write_text("id: x\nchannels: {sms: {text: \"nul \\0\"}}\n")
    nul = run("templates", "create", str(path))
    assert nul.exit_code == 2 and "NUL" in nul.output
    path.write_text(": not yaml : [")
    assert run("templates", "create", str(path)).exit_code == 2
    missing = run("templates", "preview", "nope")
    assert missing.exit_code == 2 and "no template 'nope'" in missing.output
    assert run("templates", "show", "nope").exit_code != 0
