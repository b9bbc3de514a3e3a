"""`orchestrator` command line: serve | worker | scheduler | keys | reviewers | policy | templates | db."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime

import click
from sqlalchemy import exc as sa_exc

from ..config import ConfigError, Settings, redact_url
from .common import announce_key_change, database

CLI_ACTOR = "cli"
DISTRIBUTION = "channel-orchestrator"


def _fail(message: str) -> None:
    """One line on stderr, exit 2: how every misconfiguration and bad input ends."""
    click.echo(f"orchestrator: error: {message}", err=True)
    raise click.exceptions.Exit(2)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _database_url() -> str:
    try:
        return redact_url(Settings.from_env().database_url)
    except ConfigError:
        return "the database"


class _Main(click.Group):
    """Turns configuration errors and an unreachable database into one line and exit 2,
    whichever command met them."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            _fail(str(error))
        except sa_exc.ArgumentError as error:  # also NoSuchModuleError: a malformed URL or unknown driver
            _fail(f"DATABASE_URL is not a usable database URL ({_first_line(error)}): "
                  f"use sqlite:///path or postgresql+psycopg://user:password@host/db")
        except (sa_exc.OperationalError, sa_exc.InterfaceError) as error:
            _fail(f"DATABASE_URL: cannot connect to {_database_url()} ({_first_line(error.orig or error)}): "
                  f"check that the database is running and reachable, and the URL, user and password")


@click.group(cls=_Main)
@click.version_option(package_name=DISTRIBUTION, prog_name="orchestrator")
def main() -> None:
    """Channel orchestrator."""


def _check_port_free(host: str, port: int) -> None:
    """Bind once before starting, so a port in use is one line with a hint, not a server's
    retry loop and traceback."""
    import errno
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise ConfigError(f"HOST {host!r} cannot be resolved ({error.strerror}): set --host or HOST "
                          f"to an address of this machine, e.g. 127.0.0.1 or 0.0.0.0") from None
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server itself binds
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is already in use: stop the process listening "
                                  f"there, or choose another port with --port or PORT") from None
            raise ConfigError(f"cannot listen on {host}:{port} ({error.strerror}): choose another "
                              f"address or port with --host/HOST or --port/PORT") from None


def _startup_line(process: str, settings: Settings, providers, extra: str = "") -> None:
    """One line at startup (JSON, as every line a running process writes): live and
    sandboxed channels, the database (no password), the broker."""
    import logging

    from ..logs import STARTUP_LOGGER, configure_logging

    configure_logging(settings.log_level)
    logging.getLogger(STARTUP_LOGGER).info(
        f"orchestrator {process}: {extra}channels {providers.summary()} "
        f"database={redact_url(settings.database_url)} broker={redact_url(settings.broker_url)}")


def _metrics_port(settings: Settings, process: str) -> None:
    """A worker or scheduler serves its own metrics (README, "Metrics"), when METRICS_PORT is set."""
    if not settings.metrics_port:
        return
    from .. import metrics

    try:
        metrics.serve_port(settings.host, settings.metrics_port)
    except OSError as error:
        raise ConfigError(f"METRICS_PORT {settings.metrics_port} on {settings.host}: cannot listen "
                          f"({error.strerror}): choose another port for `orchestrator {process}`") from None


def _refuse_memory_broker(settings: Settings, process: str) -> None:
    if settings.broker_url.startswith("memory://"):
        raise ConfigError(f"`orchestrator {process}` needs a shared broker, but CELERY_BROKER_URL is "
                          f"{settings.broker_url}: the in-memory queue is per process, so use `orchestrator "
                          f"serve` (it runs the worker inside), or set CELERY_BROKER_URL to redis:// or amqp://")


# -- service processes ------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="Bind address (default HOST or 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default PORT or 8000).")
@click.option("--workers", default=1, show_default=True,
              help="Server processes (use 1 with the embedded memory:// broker).")
@click.option("--threads", default=None, type=int,
              help="Threads per process for API requests (default WEB_THREADS or 16); streams use none.")
def serve(host: str | None, port: int | None, workers: int, threads: int | None) -> None:
    """Start the HTTP API and the in-app streams (uvicorn). With the embedded default
    (memory:// broker) the delivery worker and the sweeper run inside it: one command."""
    import os

    settings = Settings.from_env()
    if settings.embedded_worker and workers != 1:
        raise click.UsageError("the embedded worker needs --workers 1 (the memory:// queue is per process)")
    if workers > 1:
        _multiprocess_metrics()  # before anything imports prometheus_client

    from .. import server
    from ..audit.log import install_audit_key
    from ..dispatch.registry import ProviderRegistry
    from ..storage.db import Database
    from ..storage.migrate import upgrade
    if threads:
        os.environ["WEB_THREADS"] = str(threads)
        settings = Settings.from_env()
    bind_host, bind_port = host or settings.host, port or settings.port
    providers = ProviderRegistry.from_settings(settings)  # every provider variable checked before booting
    _check_port_free(bind_host, bind_port)
    # Migrate once, here, before any server process starts: processes racing to create the
    # same tables is how a fresh database breaks.
    database = Database(settings.database_url)
    upgrade(database)
    install_audit_key(settings, database)  # a log awaiting `audit rekey` stops the start here, in one line
    database.dispose()
    os.environ[MIGRATED_ENV] = "1"
    _startup_line("serve", settings, providers,
                  f"http://{bind_host}:{bind_port} processes={workers} threads={settings.web_threads} ")
    if workers == 1:
        from ..asgi import create_asgi

        app = create_asgi(settings, migrate=False)
        server.make_server(app, bind_host, bind_port, log_level=settings.log_level.lower(), json_logs=True).run()
    else:
        server.run_processes("orchestrator.asgi:from_env", bind_host, bind_port, workers,
                             log_level=settings.log_level.lower(), json_logs=True)


def _multiprocess_metrics() -> None:
    """Several server processes: prometheus_client's multiprocess mode, so /metrics (any
    process answers it) adds up all of them. Set before the processes start; a directory
    given in PROMETHEUS_MULTIPROC_DIR is emptied first, else a fresh one is made."""
    import os
    import tempfile

    name = "PROMETHEUS_MULTIPROC_DIR"  # orchestrator.metrics.MULTIPROC_ENV, not imported yet on purpose
    path = os.environ.get(name) or tempfile.mkdtemp(prefix="orchestrator-metrics-")
    try:
        os.makedirs(path, exist_ok=True)
        for entry in os.listdir(path):  # samples of an earlier run would be added to this one's
            if entry.endswith(".db"):
                os.remove(os.path.join(path, entry))
    except OSError as error:
        raise ConfigError(f"{name} {path}: {error.strerror}: give a writable directory of its own to this "
                          f"server") from None
    os.environ[name] = path


MIGRATED_ENV = "ORCHESTRATOR_MIGRATED"


@main.command()
@click.option("--concurrency", "-c", default=None, type=int, help="Worker threads (default WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker for a shared broker (CELERY_BROKER_URL: redis:// or amqp://).
    SIGTERM: tasks in flight finish, then it exits."""
    import os

    from ..bootstrap import bootstrap

    settings = Settings.from_env()
    _refuse_memory_broker(settings, "worker")
    state = bootstrap(settings)
    _metrics_port(settings, "worker")
    _startup_line("worker", settings, state.providers, _metrics_note(settings))
    runtime = state.dispatcher
    runtime.start_background(worker=False, sweeper_thread=False)
    from ..dispatch.celery_worker import run_worker

    try:
        code = run_worker(concurrency or runtime.settings.worker_concurrency, hostname=f"worker-{os.getpid()}@%h")
    finally:
        runtime.stop()
    sys.exit(code)


def _metrics_note(settings: Settings) -> str:
    return f"metrics=http://{settings.host}:{settings.metrics_port}/metrics " if settings.metrics_port else ""


@main.command()
def scheduler() -> None:
    """Run the sweeper (due attempts, escalations, expiry). Safe to run several: a database
    lease lets one work at a time."""
    import logging
    import signal
    import threading

    from ..bootstrap import bootstrap

    settings = Settings.from_env()
    _refuse_memory_broker(settings, "scheduler")
    state = bootstrap(settings)
    _metrics_port(settings, "scheduler")
    _startup_line("scheduler", settings, state.providers, _metrics_note(settings))
    runtime = state.dispatcher
    runtime.start_background(worker=False, sweeper_thread=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # PID 1 in a container gets SIGTERM
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    runtime.stop()  # finishes the pass under way, then hands the sweeper lease on
    logging.getLogger("orchestrator.scheduler").info("scheduler stopped")


# -- database ---------------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply Alembic migrations up to head."""
    from ..storage.db import Database
    from ..storage.migrate import upgrade

    settings = Settings.from_env()
    upgrade(Database(settings.database_url))
    click.echo("database at head")


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision."""
    _alembic(lambda migrate, database: migrate.current(database))


@db.command("history")
def db_history() -> None:
    """List the migrations, newest first, marking the current one."""
    _alembic(lambda migrate, database: migrate.history(database))


@db.command("downgrade", context_settings={"ignore_unknown_options": True})  # so `-1` is a revision
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert the schema to REVISION (an id from `db history`, `-1`, or `base`). Stop every
    process first: code newer than the schema fails."""
    _alembic(lambda migrate, database: migrate.downgrade(database, revision))
    click.echo(f"database downgraded to {revision}", err=True)


def _alembic(run) -> None:
    from alembic.util import CommandError

    from ..storage import migrate
    from ..storage.db import Database

    database = Database(Settings.from_env().database_url)
    try:
        run(migrate, database)
    except CommandError as error:
        _fail(f"{_first_line(error)}: see `orchestrator db history` for the revisions")
    finally:
        database.dispose()


# -- API keys ---------------------------------------------------------------------------
@main.group()
def keys() -> None:
    """API keys."""


@keys.command("create")
@click.option("--name", required=True, help="Who the key is for.")
@click.option("--scopes", default="send,read", show_default=True,
              help="Comma-separated: send, read, recipients, inapp:tokens, templates:write, compliance:read, "
                   "policy:write, policy:approve, admin.")
@click.option("--callback-url", default=None, help="Where status changes are posted (signed).")
@click.option("--reason", default="", help="Why (recorded in the audit log).")
@click.option("--rate-limit", "rate_limit", default=None, type=click.IntRange(1, 1_000_000),
              help="Requests per minute for this key (default: RATE_LIMIT_PER_MINUTE).")
def keys_create(name: str, scopes: str, callback_url: str | None, reason: str, rate_limit: int | None) -> None:
    """Create a key. It is printed once; only its hash is stored."""
    from ..access.auth import create_api_key, parse_scopes
    from ..audit import log as audit

    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from None
    with database().session() as session:
        key, plaintext = create_api_key(session, name, scope_list, callback_url)
        key.rate_limit_per_minute = rate_limit
        audit.append(session, actor=CLI_ACTOR, action=audit.AuditAction.KEY_CREATE, subject=f"key:{key.id}",
                     detail={"name": name, "scopes": scope_list, "prefix": key.prefix,
                             "rate_limit_per_minute": rate_limit}, reason=reason, now=datetime.now(UTC))
        click.echo(json.dumps({"id": key.id, "name": name, "scopes": scope_list, "key": plaintext,
                               "callback_secret": key.callback_secret, "rate_limit_per_minute": rate_limit},
                              indent=2))
    click.echo("Store the key now: it cannot be shown again.", err=True)


@keys.command("set-scopes")
@click.argument("key_id")
@click.option("--scopes", required=True, help="The key's new comma-separated scopes.")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
def keys_set_scopes(key_id: str, scopes: str, reason: str) -> None:
    """Change a key's scopes (audited). Running servers apply it as `keys revoke` says."""
    from ..access.auth import parse_scopes
    from ..audit import log as audit
    from ..storage.models import ApiKey

    try:
        scope_list = parse_scopes(scopes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--scopes") from None
    if not scope_list:
        raise click.BadParameter("a key needs at least one scope; to disable a key use `keys revoke`",
                                 param_hint="--scopes")
    with database().session() as session:
        key = session.get(ApiKey, key_id)
        if key is None:
            raise click.ClickException(f"no API key with id {key_id}")
        before = sorted(key.scope_set)
        key.scopes = ",".join(scope_list)
        audit.append(session, actor=CLI_ACTOR, action=audit.AuditAction.KEY_SCOPES, subject=f"key:{key.id}",
                     detail={"name": key.name, "before": before, "after": scope_list}, reason=reason,
                     now=datetime.now(UTC))
    click.echo(json.dumps({"id": key_id, "scopes": scope_list}))
    announce_key_change(key_id)


@keys.command("set-rate")
@click.argument("key_id")
@click.option("--per-minute", required=True,
              help="Requests per minute for this key, or 'default' for RATE_LIMIT_PER_MINUTE.")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
def keys_set_rate(key_id: str, per_minute: str, reason: str) -> None:
    """Set a key's rate limit (audited). Running servers apply it as `keys revoke` says."""
    from ..access import api_keys

    value = None if per_minute.strip().lower() == "default" else per_minute.strip()
    if value is not None and not value.isdigit():
        raise click.BadParameter("a whole number of requests per minute, or 'default'", param_hint="--per-minute")
    with database().session() as session:
        try:
            key = api_keys.set_rate_limit(session, key_id, None if value is None else int(value), actor=CLI_ACTOR,
                                          reason=reason, now=datetime.now(UTC))
        except api_keys.UnknownKey:
            raise click.ClickException(f"no API key with id {key_id}") from None
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--per-minute") from None
        row = api_keys.key_dict(key)
    click.echo(json.dumps(row))
    announce_key_change(key_id)


@keys.command("list")
def keys_list() -> None:
    """Every key: id, name, scopes, created, revoked (never the secret), one JSON per line."""
    from ..access import api_keys

    with database().session() as session:
        for row in api_keys.list_keys(session):
            click.echo(json.dumps(row))


@keys.command("revoke")
@click.argument("key_id")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
def keys_revoke(key_id: str, reason: str) -> None:
    """Revoke a key (audited). Running servers stop accepting it within a second when
    REDIS_URL is set (the change is published there), else within KEY_CACHE_SECONDS."""
    from ..access import api_keys

    with database().session() as session:
        try:
            key, changed = api_keys.revoke(session, key_id, actor=CLI_ACTOR, reason=reason, now=datetime.now(UTC))
        except api_keys.UnknownKey:
            raise click.ClickException(f"no API key with id {key_id}") from None
        row = api_keys.key_dict(key)
    click.echo(json.dumps({**row, "already_revoked": not changed}))
    announce_key_change(key_id)


# -- audit ------------------------------------------------------------------------------
@main.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log (threat model and anchoring: docs/AUDIT.md)."""


def _read_only_database(settings: Settings):
    """The database as it is, for commands that change nothing: not migrated (a schema behind
    the code is an error), the audit key loaded but never generated, and no SQLite file made."""
    from pathlib import Path

    from ..audit import log as audit
    from ..audit.key import load
    from ..storage.db import Database
    from ..storage.migrate import revisions

    key = load(settings, create=False)
    if settings.database_url.startswith("sqlite"):
        path = settings.database_url.split("///", 1)[-1]
        if path and path != ":memory:" and not Path(path).is_file():
            raise ConfigError(f"DATABASE_URL: no database at {path}: give the service's database")
    database = Database(settings.database_url)
    current, head = revisions(database)
    if current != head:
        database.dispose()
        raise ConfigError(f"the database schema is at revision {current or 'none'}, not {head}: run `orchestrator db "
                          f"upgrade` first (this command changes nothing, not even the schema)")
    audit.use_key(database.engine, key)
    return database


@audit_group.command("verify")
@click.option("--anchor", "anchor", default=None, type=click.Path(dir_okay=False),
              help="An off-host copy of the checkpoints (checkpoint lines, or the service's JSON log) to check "
                   "the log against too (default AUDIT_ANCHOR_FILE).")
def audit_verify(anchor: str | None) -> None:
    """Check the keyed chain and every checkpoint (the checkpoint file, the newest recorded in
    the database, the anchor copy). Reads only: writes nothing, never migrates, never
    re-keys. Exit 0: intact and anchored; 1: tampered (a broken or unkeyed chain, entries
    deleted from the end, a rewrite, a forged checkpoint, a checkpoint file deleted or
    truncated after checkpoints were written), naming what; 3: intact, but a checkpoint or the
    anchor copy is missing or stale."""
    from ..audit import checkpoints as audit_checkpoints

    settings = Settings.from_env()
    database = _read_only_database(settings)
    try:
        with database.read_only_session() as session:
            chain, result = audit_checkpoints.check(session, settings, datetime.now(UTC), anchor_file=anchor)
    finally:
        database.dispose()
    if not chain.ok:
        click.echo(chain.message, err=True)
        sys.exit(1)
    if result.exit_code:
        what = "TAMPERED" if result.exit_code == 1 else f"not anchored ({result.status.value})"
        click.echo(f"audit log {what}: {result.problem}", err=True)
        sys.exit(result.exit_code)
    latest = result.latest["at"] if result.latest else "none yet (not due)"
    shipped = "" if result.anchor_copy is None else f" ({result.anchor_copy} in the anchor copy)"
    click.echo(f"{chain.message}; {result.checkpoints} checkpoint(s) match{shipped}, newest {latest}")


@audit_group.command("rekey")
@click.option("--reason", required=True, help="Why (recorded in the audit.rekey entry).")
def audit_rekey(reason: str) -> None:
    """Once, after upgrading from a version before 0010: verify the plain SHA-256 chain of the
    entries written before keying and re-key them with the audit key (audited as
    audit.rekey). Refused (exit 1) once the log has ever been keyed, when a checkpoint exists,
    or when that chain does not verify: it never vouches for entries written without the key."""
    from ..audit import checkpoints as audit_checkpoints
    from ..audit import log as audit
    from ..audit.key import load
    from ..storage.db import Database
    from ..storage.migrate import upgrade

    settings = Settings.from_env()
    database = Database(settings.database_url)
    upgrade(database)
    audit.use_key(database.engine, load(settings))
    try:
        where = audit_checkpoints.any_checkpoint(settings)
    except OSError as error:
        raise ConfigError(f"a checkpoint file cannot be read ({error.strerror}): {error.filename}") from None
    try:
        with database.session() as session:
            count = audit.rekey_legacy(session, datetime.now(UTC), actor=CLI_ACTOR, reason=reason, checkpoints_in=where)
    except audit.RekeyRefused as refused:
        click.echo(f"orchestrator: audit rekey refused: {refused}", err=True)
        sys.exit(1)
    finally:
        database.dispose()
    click.echo(f"re-keyed {count} entries written before keying (recorded as an audit.rekey entry); "
               f"run `orchestrator audit verify`")


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Write a checkpoint now (file, its record in the database, log line, webhook) and print it."""
    from ..audit import checkpoints as audit_checkpoints

    settings = Settings.from_env()
    try:
        checkpoint = audit_checkpoints.write(settings, database(), datetime.now(UTC))
    except OSError as error:
        raise ConfigError(f"AUDIT_CHECKPOINT_FILE {settings.audit_checkpoint_file} cannot be written "
                          f"({error.strerror}): set it to a writable path") from None
    click.echo(json.dumps(checkpoint.to_dict(), sort_keys=True))


@audit_group.command("list")
@click.option("--limit", default=20, show_default=True)
def audit_list(limit: int) -> None:
    """The most recent entries, newest first (reads only)."""
    from ..audit import log as audit

    settings = Settings.from_env()
    with _read_only_database(settings).read_only_session() as session:
        for e in audit.recent(session, limit):
            click.echo(f"{e.id:>6} {e.at.isoformat(timespec='seconds')} {e.actor:<16} {e.action:<16} "
                       f"{e.subject}  {e.reason}")


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

    shape = '{"message": {"category": ...}, "facts": {"user_id": ...}}'
    try:
        data = json.load(input_json)
    except json.JSONDecodeError as error:
        _fail(f"the input is not valid JSON ({error.msg}, line {error.lineno} column {error.colno}): give {shape}")
    if not isinstance(data, dict) or not all(isinstance(data.get(k, {}), dict) for k in ("message", "facts")):
        _fail(f"the input must be a JSON object {shape}")
    try:
        at = datetime.fromisoformat(now) if now else datetime.now(UTC)
    except ValueError:
        _fail(f"--now {now!r} is not an ISO time: use e.g. --now 2026-03-10T12:00:00+00:00")
    pol = policies.load_policy(policy_file) if policy_file else policies.load_default_policy()
    try:
        plan = policies.explain(pol, data.get("message", {}), data.get("facts", {}), at)
    except KeyError as error:
        _fail(f"the input lacks {error.args[0]!r} (message.category and facts.user_id are required): give {shape}")
    except (ValueError, TypeError) as error:
        _fail(f"the input is not a valid message: {_first_line(error)}")
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


@policy.command("simulate")
@click.argument("draft")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 366),
              help="Replay the messages of the last N days.")
@click.option("--show", default=10, show_default=True, help="How many changed messages to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def policy_simulate(draft: str, days: int, show: int, as_json: bool) -> None:
    """Replay recent messages through DRAFT (a policy file, or a stored version) and show
    what would change: the channel mix before/after and the messages whose plan changes."""
    from datetime import timedelta
    from pathlib import Path

    import policies

    from ..compliance import simulation, simulation_workers
    from ..compliance.policy_store import PolicyStore

    db = database()
    if Path(draft).is_file():
        try:
            pol = policies.load_policy(Path(draft))
        except policies.PolicyError as exc:
            for err in exc.errors:
                click.echo(f"{draft}: {err}", err=True)
            sys.exit(1)
    else:
        try:
            pol = PolicyStore(db).get(draft)
        except LookupError:
            raise click.ClickException(f"{draft}: neither a file nor a stored policy version") from None
    since = datetime.now(UTC) - timedelta(days=days)
    total = simulation.count_messages(db, since)
    active = PolicyStore(db).active()
    with click.progressbar(length=total, label=f"replaying {total} messages", file=sys.stderr) as bar:
        result = simulation_workers.simulate_auto(db, pol, active, since=since, total=total, progress=bar.update)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
        return
    click.echo(f"policy {pol.version} against the active {active.version}: {result.messages} messages from the "
               f"last {days} days replayed in {result.seconds:.1f}s")
    click.echo(simulation.format_channel_mix(result))
    click.echo(f"changed: {result.changed_count} messages"
               + (f"; {result.error_count} could not be replayed" if result.error_count else ""))
    click.echo(simulation.format_changes(result))
    for rule, n in result.rules_responsible.most_common(10):
        click.echo(f"  rule {rule}: {n} messages")
    for change in result.changed[:show]:
        click.echo(f"  {change.message_id} {change.category}: {' '.join(change.before) or '(none)'} -> "
                   f"{' '.join(change.after) or '(none)'}  [{', '.join(change.rules)}]; {'; '.join(change.changes)}")


def _add_commands() -> None:
    from .openapi import openapi_group
    from .reviewers import reviewers_group
    from .templates import templates_group

    main.add_command(templates_group)
    main.add_command(reviewers_group)
    main.add_command(openapi_group)


_add_commands()

if __name__ == "__main__":
    main()
