"""`orchestrator templates …`: create, version, list, show and preview templates from the
command line. Files are YAML or JSON in the shape of the API's bodies; every check and the
audit entry are the API's own (content/templates.py). The actor recorded is `cli`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click
import yaml
from pydantic import ValidationError

CLI_ACTOR = "cli"


def _database():
    from ..config import Settings
    from ..storage.db import Database
    from ..storage.migrate import upgrade

    database = Database(Settings.from_env().database_url)
    upgrade(database)
    return database


def _load(path: str, param: str) -> dict[str, Any]:
    """A YAML (or JSON) mapping, put through the API's JSON checks (no NUL, no deep nesting)."""
    from policies import yaml_text
    from providers import safe_json

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml_text.load(handle.read())
        data = safe_json.loads(json.dumps(data, default=str))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {str(exc).splitlines()[0]}", param_hint=param) from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: must hold a mapping (the template)", param_hint=param)
    return data


def _api_errors(run):
    """Runs `run()`; a validation or API error becomes one line naming the field, exit 2."""
    from ..errors import DomainError, from_validation_error

    try:
        return run()
    except ValidationError as exc:
        err = from_validation_error(exc)
    except DomainError as exc:
        err = exc
    click.echo(f"orchestrator: error: {err.message}", err=True)
    raise click.exceptions.Exit(2)


def _save_from_file(file: str, reason: str | None, model, save, *, without: tuple[str, ...] = ()) -> None:
    """FILE (less the keys `without`; --reason, when given, in place of the file's) checked as
    `model`, stored by `save(database, session, body)`; prints the version stored."""
    from ..content import templates

    data = _load(file, "FILE")
    for key in without:
        data.pop(key, None)
    if reason is not None:
        data["reason"] = reason
    database = _database()

    def run():
        body = model.model_validate(data)
        with database.session() as session:
            return templates.version_dict(save(database, session, body))

    _echo_json(_api_errors(run))


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group("templates")
def templates_group() -> None:
    """Message templates (per channel, per locale; every change audited)."""


@templates_group.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", default=None, help="Why (recorded in the audit log); overrides the file's.")
def templates_create(file: str, reason: str | None) -> None:
    """Create a template (version 1) from FILE: id, default_locale, reply_to, channels, translations."""
    from ..content import templates
    from ..content.schemas import TemplateCreate

    _save_from_file(file, reason, TemplateCreate,
                    lambda database, session, body: templates.create(database, session, body, CLI_ACTOR,
                                                                     datetime.now(UTC)))


@templates_group.command("version")
@click.argument("template_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--reason", default=None, help="Why (recorded in the audit log); overrides the file's.")
def templates_version(template_id: str, file: str, reason: str | None) -> None:
    """Save FILE as the next version of TEMPLATE_ID."""
    from ..content import templates
    from ..content.schemas import TemplateVersionIn

    _save_from_file(file, reason, TemplateVersionIn,
                    lambda database, session, body: templates.add_version(database, session, template_id, body,
                                                                          CLI_ACTOR, datetime.now(UTC)),
                    without=("id",))


@templates_group.command("list")
def templates_list() -> None:
    """Every template: id and latest version, one JSON per line."""
    from ..content import templates

    with _database().session() as session:
        after = None
        while True:
            rows = templates.list_rows(session, 500, after)
            for row in rows:
                click.echo(json.dumps(templates.template_dict(row), ensure_ascii=False))
            if len(rows) < 500:
                return
            after = rows[-1].id


@templates_group.command("show")
@click.argument("template_id")
@click.option("--version", type=click.IntRange(1, 2**31 - 1), default=None, help="Default: the latest.")
def templates_show(template_id: str, version: int | None) -> None:
    """One version of a template, as stored."""
    from ..content import templates

    with _database().session() as session:
        row = templates.get_row(session, template_id)
        if row is None:
            raise click.ClickException(f"no template '{template_id}'")
        found = templates.get_version_row(session, template_id, version or row.latest_version)
        if found is None:
            raise click.ClickException(f"template '{template_id}' has no version {version}")
        _echo_json(templates.version_dict(found))


@templates_group.command("preview")
@click.argument("template_id")
@click.option("--variables", "variables_json", default="{}", help="The variables, as a JSON object.")
@click.option("--locale", default=None, help="Render for this locale (falls back like a send does).")
@click.option("--version", type=click.IntRange(1, 2**31 - 1), default=None, help="Default: the latest.")
def templates_preview(template_id: str, variables_json: str, locale: str | None, version: int | None) -> None:
    """Render every channel's variant; nothing is sent."""
    from providers import safe_json

    from ..config import Settings
    from ..content import templates
    from ..content.schemas import PreviewIn

    try:
        variables = safe_json.loads(variables_json)
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint="--variables") from None
    database = _database()

    def run():
        body = PreviewIn.model_validate({"variables": variables, "locale": locale, "version": version})
        compiled = templates.compiled(database, None, template_id, body.version, field_prefix="")
        rendered = templates.render(compiled, body.locale, body.variables, prefix="",
                                    link_schemes=Settings.from_env().action_url_schemes)
        return {"id": compiled.template_id, "version": compiled.version, "locale": rendered.locale,
                "channels": rendered.channels}

    _echo_json(_api_errors(run))
