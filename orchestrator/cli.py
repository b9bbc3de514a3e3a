"""`orchestrator` command line: serve | worker | scheduler | keys | policy | db."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import click

from .config import Settings


@click.group()
def main() -> None:
    """Channel orchestrator."""


# -- service processes ------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="Bind address (default HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default PORT or 8000).")
@click.option("--workers", default=1, show_default=True,
              help="gunicorn worker processes (use 1 with the embedded memory:// broker).")
@click.option("--threads", default=16, show_default=True, help="Threads per worker process.")
def serve(host: str | None, port: int | None, workers: int, threads: int) -> None:
    """Start the HTTP API. With the embedded default (memory:// broker) the Celery worker
    and the sweeper run inside it: one command, nothing else to start."""
    from gunicorn.app.base import BaseApplication

    from .app import create_app

    settings = Settings.from_env()
    if settings.embedded_worker and workers != 1:
        raise click.UsageError("the embedded worker needs --workers 1 (the memory:// queue is per process)")

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host or settings.host}:{port or settings.port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", "-")

        def load(self):
            # Runs in the worker process, so the background threads live where requests do.
            return create_app(settings, start_background=True)

    click.echo(f"orchestrator: http://{host or settings.host}:{port or settings.port} "
               f"database={settings.database_url.split('@')[-1]} broker={settings.broker_url.split('@')[-1]}",
               err=True)
    _Server().run()


@main.command()
@click.option("--concurrency", "-c", default=None, type=int, help="Worker threads (default WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker for a shared broker (CELERY_BROKER_URL: redis:// or amqp://)."""
    runtime = _runtime()
    from .dispatch.celery_app import celery_app

    runtime.start_background(worker=False, sweeper_thread=False)
    celery_app.worker_main(["worker", "--pool=threads", "-c", str(concurrency or runtime.settings.worker_concurrency),
                            "-Q", "orchestrator", "--without-gossip", "--without-mingle", "-l", "INFO"])


@main.command()
def scheduler() -> None:
    """Run the sweeper (due attempts, escalations, expiry). Safe to run several: a database
    lease lets one work at a time."""
    runtime = _runtime()
    runtime.start_background(worker=False, sweeper_thread=True)
    click.echo("scheduler running; Ctrl-C to stop", err=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        runtime.stop()


def _runtime():
    from .app import create_app
    from .app_state import EXTENSION_KEY

    app = create_app(Settings.from_env())
    return app.extensions[EXTENSION_KEY].dispatcher


# -- database ---------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to head."""
    from .storage.db import Database
    from .storage.migrate import upgrade

    settings = Settings.from_env()
    upgrade(Database(settings.database_url))
    click.echo("database at head")


# -- API keys ---------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for.")
@click.option("--scopes", default="send,read", show_default=True,
              help="Comma-separated: send, read, recipients, compliance:read, policy:write, policy:approve, admin.")
@click.option("--callback-url", default=None, help="Where status changes are posted (signed).")
def keys_create(name: str, scopes: str, callback_url: str | None) -> None:
    """Create a key. It is printed once; only its hash is stored."""
    from .auth import create_api_key, parse_scopes
    from .storage.db import Database
    from .storage.migrate import upgrade

    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from None
    database = Database(Settings.from_env().database_url)
    upgrade(database)
    with database.session() as session:
        key, plaintext = create_api_key(session, name, scope_list, callback_url)
        click.echo(json.dumps({"id": key.id, "name": name, "scopes": scope_list, "key": plaintext,
                               "callback_secret": key.callback_secret}, indent=2))
    click.echo("Store the key now: it cannot be shown again.", err=True)


# -- policy -----------------------------------------------------------------------------
@main.group()
def policy() -> None:
    """Routing policy documents."""


@policy.command("lint")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def policy_lint(file: str) -> None:
    """Validate a policy document; errors name the rule and field."""
    import policies

    errors = policies.lint_document(file)
    if errors:
        for err in errors:
            click.echo(f"{file}: {err}", err=True)
        sys.exit(1)
    click.echo(f"{file}: ok")


@policy.command("explain")
@click.argument("input_json", type=click.File("r"), default="-")
@click.option("--policy-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Policy document (default: the shipped default).")
@click.option("--now", default=None, help="ISO time to decide at (default: now).")
def policy_explain(input_json, policy_file: str | None, now: str | None) -> None:
    """Print the plan, with reasons, for {"message": {...}, "facts": {...}} given as JSON."""
    import policies

    data = json.load(input_json)
    pol = policies.load_policy(policy_file) if policy_file else policies.load_default_policy()
    at = datetime.fromisoformat(now) if now else datetime.now(UTC)
    plan = policies.explain(pol, data.get("message", {}), data.get("facts", {}), at)
    click.echo(json.dumps(plan, indent=2, ensure_ascii=False))


@policy.command("test")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--policy-file", type=click.Path(exists=True, dir_okay=False), default=None)
def policy_test(file: str | None, policy_file: str | None) -> None:
    """Run golden scenarios (default: the shipped table) against a policy."""
    import policies

    pol = policies.load_policy(policy_file) if policy_file else policies.load_default_policy()
    results = policies.run_golden(pol, file)
    failed = [r for r in results if not r.passed]
    for r in failed:
        click.echo(f"FAIL {r.name}\n{r.diff}", err=True)
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
