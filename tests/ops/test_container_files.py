"""The container files, checked against the code (no container runtime works on the test
machine: see README, "Containers"): every command compose and the Dockerfile run parses
with our CLI; every variable the code reads is passed through; the settings compose gives
each service boot; the services start in order and have health checks."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import click
import pytest
import yaml

from orchestrator.cli.main import main
from orchestrator.config import Settings
from orchestrator.dispatch.registry import BACKUP_MARK, ProviderRegistry
from providers import twilio_sms

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
SERVICES = COMPOSE["services"]
APP_SERVICES = ["migrate", "api", "worker", "scheduler"]
LONG_RUNNING = ["api", "worker", "scheduler"]
# Read by the code but not for an operator to set: the serve parent tells its server
# processes it migrated; the data directory is the image's /app/var.
INTERNAL = {"ORCHESTRATOR_MIGRATED", "ORCHESTRATOR_DATA_DIR"}
_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_READERS = {"get", "_int", "_float", "_bool", "_env_bool", "_log_level"}


def variables_read() -> set[str]:
    """Every environment variable orchestrator/ and providers/ read: names passed to
    `<...env...>.get(...)` / `env[...]` / the config helpers, and the constants naming them
    (`ENV_*`, `*_ENV`, members of a class `Env`)."""
    found: set[str] = set()
    for path in [*(ROOT / "orchestrator").rglob("*.py"), *(ROOT / "providers").rglob("*.py")]:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == "Env":
                found |= {n.value.value for n in node.body if isinstance(n, ast.Assign)
                          and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)}
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if any(n.startswith("ENV_") or n.endswith("_ENV") for n in names):
                    found.add(node.value.value)
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name not in _READERS:
                    continue
                if name == "get" and "env" not in ast.unparse(func.value).lower():
                    continue
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            elif isinstance(node, ast.Subscript) and "env" in ast.unparse(node.value).lower():
                if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                    found.add(node.slice.value)
    return {n for n in found if _NAME.match(n)}


def dockerfile_env() -> set[str]:
    names: set[str] = set()
    for line in DOCKERFILE.splitlines():
        if line.startswith("ENV "):
            names |= {part.split("=", 1)[0] for part in shlex.split(line[4:])}
    return names


def resolve(value: object) -> str:
    """A compose value with `${VAR:-default}` → default, `${VAR:?msg}` → a set value (as long
    as `openssl rand -hex 32` gives), `${VAR}` → ""."""
    text = str(value)

    def sub(match: re.Match) -> str:
        op, rest = match.group(2), match.group(3) or ""
        return rest if op == ":-" else "value-from-the-shell-" + "0" * 43 if op == ":?" else ""

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)?([^}]*)\}", sub, text)


def service_env(name: str) -> dict[str, str]:
    image_env = {"HOST": "0.0.0.0", "PORT": "8000"}  # the Dockerfile's ENV
    return {**image_env, **{k: resolve(v) for k, v in (SERVICES[name].get("environment") or {}).items()}}


def parse_command(argv: list[str]) -> list[str]:
    """Parses argv with the CLI's own click parser, down to the command; returns its path."""
    assert argv[0] == "orchestrator", argv
    ctx = main.make_context("orchestrator", list(argv[1:]))
    path = []
    command, args = main, [*getattr(ctx, "_protected_args", []), *ctx.args]
    while isinstance(command, click.Group) and args:
        name, sub, rest = command.resolve_command(ctx, args)
        ctx = sub.make_context(name, rest, parent=ctx)
        path.append(name)
        command, args = sub, [*getattr(ctx, "_protected_args", []), *ctx.args]
    assert not args, f"{argv}: left unparsed: {args}"
    return path


def test_the_scan_finds_what_the_code_reads():
    found = variables_read()
    # one from each way of reading: config helpers, env.get, Env classes, ENV_ constants, settings.env.get
    assert {"WEB_THREADS", "DATABASE_URL", "FCM_CREDENTIALS_FILE", "TWILIO_ACCOUNT_SID", "SECRET_KEY",
            "SMTP_SSL", "METRICS_PORT", "PROMETHEUS_MULTIPROC_DIR", "LOG_LEVEL"} <= found


def test_every_variable_the_code_reads_is_passed_through():
    passed = dockerfile_env().union(*(SERVICES[s].get("environment") or {} for s in APP_SERVICES))
    needed = variables_read() - INTERNAL
    # The backup account (TWILIO_BACKUP_*) repeats the SMS provider's own variables.
    sms_account = {v for k, v in vars(twilio_sms).items() if k.startswith("ENV_")}
    twilio = {n for n in needed & sms_account if n != "TWILIO_WEBHOOK_PUBLIC_URL"}
    needed |= {n.replace("TWILIO_", f"TWILIO{BACKUP_MARK}", 1) for n in twilio}
    assert not needed - passed, f"read by the code, not passed by compose: {sorted(needed - passed)}"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_command_parses_with_our_cli(service):
    path = parse_command(SERVICES[service]["command"])
    assert path == {"migrate": ["db", "upgrade"], "api": ["serve"], "worker": ["worker"],
                    "scheduler": ["scheduler"]}[service]


def test_the_image_default_command_parses_and_suits_its_default_settings():
    cmd = next(line for line in DOCKERFILE.splitlines() if line.startswith("CMD "))
    import json

    argv = json.loads(cmd[4:])
    assert parse_command(argv) == ["serve"]
    assert "--workers" not in argv, "the image's default is the embedded memory:// broker: one process"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_service_settings_boot(service):
    """The settings compose gives each service pass the same validation the CLI runs first
    (blank pass-throughs mean defaults; providers stay in sandbox)."""
    env = service_env(service)
    settings = Settings.from_env(env)
    registry = ProviderRegistry.from_settings(settings)
    assert "live=in_app(inapp)" in registry.summary()
    assert settings.redis_url and settings.broker_url.startswith("redis://") and not settings.embedded_worker
    assert env["SECRET_KEY"], "every API process must sign review sessions with the same key"
    if service in ("worker", "scheduler"):
        assert settings.metrics_port, "their metrics have a port of their own"
        assert env["HEALTH_URL"].endswith(f":{settings.metrics_port}/metrics")


def test_start_order_and_health_checks():
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["migrate"]["restart"] == "no"
    for name in LONG_RUNNING:
        assert SERVICES[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                                "redis": {"condition": "service_healthy"}}, name
    for name in ("postgres", "redis"):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE  # the API; HEALTH_URL for the others
    assert re.search(r"^USER (?!root)\S+", DOCKERFILE, re.M), "runs as a non-root user"


def test_the_build_context_leaves_out_local_state():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", "var", ".git"} <= set(ignored)
