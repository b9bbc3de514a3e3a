"""`orchestrator openapi dump | reference [--write] [--check]`: the OpenAPI document and
docs/API.md's route reference, from the same declarations the server serves."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

API_MD = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def offline_app():
    """The app on a throw-away SQLite file: only its url_map and declarations are read."""
    from ..app import create_app
    from ..config import Settings

    tmp = tempfile.mkdtemp(prefix="orchestrator-openapi-")
    settings = Settings.from_env({"DATABASE_URL": f"sqlite:///{tmp}/doc.sqlite3", "CELERY_BROKER_URL": "memory://",
                                  "EMBEDDED_WORKER": "false", "ORCHESTRATOR_DATA_DIR": tmp,
                                  "LOG_LEVEL": "ERROR", "SECRET_KEY": "docs"})
    return create_app(settings)


@click.group("openapi")
def openapi_group() -> None:
    """The generated API document."""


@openapi_group.command("dump")
def dump() -> None:
    """Print /openapi.json."""
    from ..api.openapi import build_spec

    click.echo(json.dumps(build_spec(offline_app()), indent=2))


@openapi_group.command("reference")
@click.option("--write", is_flag=True, help="Rewrite the generated section of docs/API.md.")
@click.option("--check", is_flag=True, help="Exit 1 when docs/API.md's generated section is stale.")
@click.option("--file", "path", type=click.Path(dir_okay=False, path_type=Path), default=API_MD, show_default=True)
def reference(write: bool, check: bool, path: Path) -> None:
    """The route reference table of docs/API.md."""
    from ..api.openapi import reference_markdown, update_reference

    app = offline_app()
    if not (write or check):
        click.echo(reference_markdown(app))
        return
    current = path.read_text(encoding="utf-8")
    updated = update_reference(current, app)
    if check:
        if updated != current:
            click.echo(f"{path}: the route reference is stale; run `orchestrator openapi reference --write`",
                       err=True)
            sys.exit(1)
        click.echo(f"{path}: up to date")
        return
    path.write_text(updated, encoding="utf-8")
    click.echo(f"{path}: route reference written")
