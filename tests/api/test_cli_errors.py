"""Misconfiguration and bad input end in one line naming the variable, exit 2, no traceback
(issue #14): through click's runner, and through the installed `orchestrator` for the cases
that only a real process shows (serve, a port in use)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.config import ConfigError, Settings, redact_url

ORCHESTRATOR = str(Path(sys.executable).with_name("orchestrator"))
PROVIDER_PREFIXES = ("TWILIO_", "SMTP_", "FCM_", "APNS_")
UNREACHABLE_DB = "postgresql+psycopg://orch:s3cret-pw@127.0.0.1:1/nowhere"


def clean_env(tmp_path, **extra: str) -> dict[str, str | None]:
    """The runner's env overlay: ambient provider variables removed, a fresh data dir, and a
    free port (a `make serve` running beside the tests holds 8000)."""
    env: dict[str, str | None] = {k: None for k in os.environ
                                  if k.startswith(PROVIDER_PREFIXES) or k in {"PORT", "DATABASE_URL"}}
    env.update({"ORCHESTRATOR_DATA_DIR": str(tmp_path), "CELERY_BROKER_URL": "memory://", "LOG_LEVEL": "WARNING",
                "PORT": str(free_port())})
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line_error(result, *names: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("orchestrator: error: ")
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def run(tmp_path, *args: str, input: str | None = None, **env: str):
    return CliRunner().invoke(main, list(args), env=clean_env(tmp_path, **env), input=input)


# -- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["PORT", "WORKER_CONCURRENCY", "MAX_BODY_BYTES", "LEASE_SECONDS", "MAX_STREAMS",
                                  "SWEEP_INTERVAL_SECONDS", "KEY_CACHE_SECONDS", "STREAM_KEEPALIVE_SECONDS",
                                  "PARKED_RECEIPTS_MAX_AGE_SECONDS", "REVIEW_SESSION_MAX_AGE_SECONDS"])
def test_every_numeric_variable_names_itself_when_not_a_number(name):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "abc"})


def test_port_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match="PORT must be between 1 and 65535"):
        Settings.from_env({"PORT": "70000"})


def test_redact_url_hides_only_the_password():
    assert redact_url(UNREACHABLE_DB) == "postgresql+psycopg://orch:***@127.0.0.1:1/nowhere"
    assert redact_url("redis://:pw@redis:6379/0") == "redis://:***@redis:6379/0"
    assert redact_url("sqlite:///var/x.sqlite3") == "sqlite:///var/x.sqlite3"


def test_port_abc_from_the_installed_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    env.update(PORT="abc", ORCHESTRATOR_DATA_DIR=str(tmp_path))
    done = subprocess.run([ORCHESTRATOR, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "orchestrator: error: PORT must be a whole number, got 'abc': set it like PORT=8000, "
        "or unset it for the default (8000)"]


# -- providers -----------------------------------------------------------------------------
@pytest.mark.parametrize(("env", "names"), [
    ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"},
     ["TWILIO_FROM_NUMBER", "TWILIO_MESSAGING_SERVICE_SID"]),
    ({"TWILIO_ACCOUNT_SID": "AC" + "0" * 32}, ["TWILIO_AUTH_TOKEN"]),
    ({"TWILIO_BACKUP_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_BACKUP_AUTH_TOKEN": "t"},
     ["TWILIO_BACKUP_FROM_NUMBER"]),
    ({"SMTP_HOST": "smtp.example.com"}, ["SMTP_HOST", "SMTP_FROM"]),
    ({"SMTP_HOST": "smtp.example.com", "SMTP_FROM": "a@example.com", "SMTP_PORT": "x"}, ["SMTP_PORT"]),
    ({"FCM_CREDENTIALS_FILE": "/nonexistent/fcm.json"}, ["FCM_CREDENTIALS_FILE", "/nonexistent/fcm.json"]),
    ({"FCM_CREDENTIALS_JSON": "{not json"}, ["FCM_CREDENTIALS_JSON"]),
    ({"APNS_KEY_ID": "ABC123"}, ["APNS_KEY_ID", "APNS_KEY_FILE"]),
    ({"APNS_KEY": "-----BEGIN PRIVATE KEY-----"}, ["APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"]),
    ({"APNS_KEY_FILE": "/nonexistent/key.p8"}, ["APNS_KEY_FILE"]),
], ids=["twilio-no-sender", "twilio-sid-only", "twilio-backup-no-sender", "smtp-no-from", "smtp-port",
        "fcm-missing-file", "fcm-bad-json", "apns-key-id-only", "apns-key-only", "apns-missing-file"])
def test_provider_misconfiguration_is_one_line(tmp_path, env, names):
    one_line_error(run(tmp_path, "serve", **env), *names)


def test_partial_apns_is_an_error_not_a_silent_sandbox(tmp_path):
    line = one_line_error(run(tmp_path, "serve", APNS_TEAM_ID="T", APNS_TOPIC="com.example"))
    assert "APNS_TEAM_ID" in line and "APNS_TOPIC" in line and "sandbox" in line


# -- database ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["serve"], ["keys", "create", "--name", "x"], ["db", "upgrade"],
                                     ["keys", "list"]])
def test_unreachable_database_is_one_line_without_the_password(tmp_path, command):
    line = one_line_error(run(tmp_path, *command, DATABASE_URL=UNREACHABLE_DB), "DATABASE_URL")
    assert "s3cret-pw" not in line and "127.0.0.1:1" in line


def test_malformed_database_url_is_one_line(tmp_path):
    one_line_error(run(tmp_path, "keys", "create", "--name", "x", DATABASE_URL="nope://x"), "DATABASE_URL")


# -- serve ---------------------------------------------------------------------------------
def test_port_in_use_is_one_line_with_a_hint(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(run(tmp_path, "serve", "--port", str(port)), str(port), "--port", "PORT")
    assert "in use" in line


def test_serve_announces_live_and_sandboxed_channels(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_PREFIXES)}
    env.update(ORCHESTRATOR_DATA_DIR=str(tmp_path), PORT=str(port), CELERY_BROKER_URL="memory://",
               SMTP_HOST="127.0.0.1", SMTP_FROM="alerts@example.com", LOG_LEVEL="WARNING")
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([ORCHESTRATOR, "serve"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True)
    try:
        entry = json.loads(proc.stderr.readline())  # every line a running process writes is JSON
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert entry["logger"] == "orchestrator.startup" and entry["level"] == "info", entry
    line = entry["msg"]
    assert line.startswith(f"orchestrator serve: http://127.0.0.1:{port} "), line
    assert "live=email(smtp)" in line and "in_app(inapp)" in line, line
    assert "sandbox=sms whatsapp push/fcm push/apns" in line, line
    assert f"database=sqlite:///{tmp_path}/orchestrator.sqlite3" in line and "broker=memory://" in line, line


# -- worker and scheduler ------------------------------------------------------------------
@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_refuse_the_memory_broker(tmp_path, command):
    line = one_line_error(run(tmp_path, command), "CELERY_BROKER_URL", "memory://", "per process", "serve",
                          "redis://", "amqp://")
    assert f"orchestrator {command}" in line


def test_version_comes_from_the_installed_distribution(tmp_path):
    from importlib.metadata import version

    result = run(tmp_path, "--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"orchestrator, version {version('channel-orchestrator')}"


# -- policy explain ------------------------------------------------------------------------
GOOD = {"message": {"category": "otp", "urgency": "high", "body": "1"}, "facts": {"user_id": "u"}}


@pytest.mark.parametrize(("stdin", "args", "names"), [
    ("{not json", [], ["JSON"]),
    ("[1, 2]", [], ["JSON", "message", "facts"]),
    (json.dumps({"message": GOOD["message"], "facts": {}}), [], ["user_id"]),
    (json.dumps({"message": {**GOOD["message"], "category": "pigeon"}, "facts": GOOD["facts"]}), [],
     ["pigeon"]),
    (json.dumps(GOOD), ["--now", "yesterday"], ["--now", "yesterday"]),
], ids=["invalid-json", "not-an-object", "missing-user-id", "unknown-category", "bad-now"])
def test_policy_explain_bad_input_is_one_line(tmp_path, stdin, args, names):
    one_line_error(run(tmp_path, "policy", "explain", *args, input=stdin), *names)


# -- db current / history / downgrade ------------------------------------------------------
def test_db_current_history_and_downgrade(tmp_path):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from orchestrator.storage.migrate import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    previous = script.get_revision(head).down_revision  # ids need not be consecutive
    assert run(tmp_path, "db", "upgrade").exit_code == 0
    current = run(tmp_path, "db", "current")
    assert current.exit_code == 0 and current.stdout.strip() == f"{head} (head)"
    history = run(tmp_path, "db", "history")
    assert history.exit_code == 0
    assert "(current)" in history.stdout and "<base> -> 0001" in history.stdout
    down = run(tmp_path, "db", "downgrade", "-1")
    assert down.exit_code == 0, down.output
    assert run(tmp_path, "db", "current").stdout.strip() == previous
    assert run(tmp_path, "db", "upgrade").exit_code == 0
    assert run(tmp_path, "db", "current").stdout.strip() == f"{head} (head)"


def test_db_downgrade_to_an_unknown_revision_is_one_line(tmp_path):
    assert run(tmp_path, "db", "upgrade").exit_code == 0
    one_line_error(run(tmp_path, "db", "downgrade", "zzz"), "zzz", "db history")
