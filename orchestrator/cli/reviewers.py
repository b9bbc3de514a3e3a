"""`orchestrator reviewers …`: invite a person to the review pages by a one-time link, list
reviewers and their open sessions, revoke a reviewer or one session. The work and the audit
entries are compliance/reviewers.py's, as for the admin API; the actor recorded is `cli`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import click

CLI_ACTOR = "cli"


def _database():
    from .common import database

    return database()


def _settings():
    from ..config import Settings

    return Settings.from_env()


@click.group("reviewers")
def reviewers_group() -> None:
    """People who sign in to the review pages by invitation or single sign-on."""


@reviewers_group.command("invite")
@click.option("--name", required=True, help="Who the invitation is for, as shown on the pages and in the audit log.")
@click.option("--scopes", required=True,
              help="Comma-separated, e.g. compliance:read,policy:approve (policy:write, admin also valid).")
@click.option("--expires-in", "expires_in", default="72h", show_default=True,
              help="How long the link works: minutes, hours or days, e.g. 30m, 72h, 7d (5m to 30d).")
@click.option("--reason", default="", help="Why (recorded in the audit log).")
def reviewers_invite(name: str, scopes: str, expires_in: str, reason: str) -> None:
    """Print a one-time sign-in link (only its hash is stored; it cannot be shown again)."""
    from ..compliance import reviewers

    try:
        lifetime = reviewers.parse_lifetime(expires_in)
    except ValueError as exc:
        raise click.BadParameter(str(exc).removeprefix("expires_in: "), param_hint="--expires-in") from None
    for param, check in (("--name", lambda: reviewers.clean_name(name)),
                         ("--scopes", lambda: reviewers.reviewer_scopes(scopes))):
        try:
            check()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=param) from None
    settings = _settings()
    with _database().session() as session:
        row, token = reviewers.create_invitation(session, name, scopes, lifetime=lifetime, actor=CLI_ACTOR,
                                                 reason=reason, now=datetime.now(UTC))
        out = {"id": row.id, "name": row.name, "scopes": row.scopes.split(","),
               "expires_at": row.expires_at.isoformat(),
               "link": reviewers.invitation_link(settings.public_base_url, token)}
    click.echo(json.dumps(out, indent=2))
    if not settings.public_base_url:
        click.echo("PUBLIC_BASE_URL is not set: put the service's address in front of the link.", err=True)
    click.echo("Send the link to the person only: it signs in once and cannot be shown again.", err=True)


@reviewers_group.command("list")
def reviewers_list() -> None:
    """Every reviewer with scopes and open sessions, one JSON per line."""
    from ..compliance import reviewers

    max_age = timedelta(seconds=_settings().review_session_max_age_seconds)
    with _database().session() as session:
        for row in reviewers.list_reviewers(session, datetime.now(UTC), max_age):
            click.echo(json.dumps(row))


@reviewers_group.command("revoke")
@click.argument("reviewer_id")
@click.option("--session", "session_ref", default=None,
              help="End only this session (its id from `reviewers list`); without it the reviewer is revoked.")
@click.option("--reason", required=True, help="Why (recorded in the audit log).")
def reviewers_revoke(reviewer_id: str, session_ref: str | None, reason: str) -> None:
    """Revoke a reviewer (their key and every session) or end one session. Open pages are
    refused at the next click."""
    from ..compliance import reviewers
    from .common import announce_key_change

    with _database().session() as session:
        try:
            if session_ref:
                ended = reviewers.revoke_session(session, reviewer_id, session_ref, actor=CLI_ACTOR, reason=reason,
                                                 now=datetime.now(UTC))
                if not ended:
                    raise click.ClickException(f"reviewer {reviewer_id} has no open session {session_ref}")
                click.echo(json.dumps({"id": reviewer_id, "session": session_ref, "ended": True}))
                return
            reviewer = reviewers.revoke_reviewer(session, reviewer_id, actor=CLI_ACTOR, reason=reason,
                                                 now=datetime.now(UTC))
            key_id = reviewer.key_id
            click.echo(json.dumps({"id": reviewer.id, "name": reviewer.name,
                                   "revoked_at": reviewer.revoked_at.isoformat()}))
        except reviewers.UnknownReviewer:
            raise click.ClickException(f"no reviewer with id {reviewer_id}") from None
    sys.stdout.flush()
    announce_key_change(key_id)
