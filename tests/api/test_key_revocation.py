"""Credentials and boundaries (issue #12 §2): minting in-app tokens needs its own scope; API
keys can be listed and revoked, by CLI and by an admin API route, and a revoked key stops
working at once in the revoking process and within KEY_CACHE_SECONDS elsewhere (without
Redis; with it, within a second: test_key_cache_sync.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from orchestrator.cli.main import main
from orchestrator.storage.models import ApiKey, AuditEntry


@pytest.fixture
def run(settings_env):
    def invoke(*args):
        return CliRunner().invoke(main, list(args), env=settings_env, catch_exceptions=False)

    return invoke


def key_id(state, name: str) -> str:
    with state.db.session() as s:
        return s.scalar(select(ApiKey.id).where(ApiKey.name == name))


@pytest.mark.parametrize("scopes", [["send"], ["recipients"], ["send", "recipients", "read"]])
def test_send_or_recipients_keys_cannot_mint_or_revoke_inapp_tokens(client, make_key, scopes):
    headers = make_key(scopes)
    for method, path in [("post", "/v1/recipients/u-1/inapp-token"),
                         ("post", "/v1/recipients/u-1/inapp-tokens/revoke"),
                         ("delete", "/v1/inapp-tokens/01ARZ3NDEKTSV4RRFFQ69G5FAV")]:
        r = getattr(client, method)(path, headers=headers)
        assert r.status_code == 403 and "inapp:tokens" in r.get_json()["error"]["message"], path


def test_inapp_tokens_scope_mints_a_token(client, make_key):
    r = client.post("/v1/recipients/u-1/inapp-token", headers=make_key(["inapp:tokens"]))
    assert r.status_code in (200, 201), r.get_json()
    assert r.get_json()["token"]


def test_admin_lists_keys_without_secrets_and_revokes_at_once(client, make_key, state):
    admin = make_key(["admin"], name="root")
    victim = make_key(["send", "read"], name="victim")
    assert client.get("/v1/messages/nope", headers=victim).status_code == 404   # cached as valid
    listed = client.get("/v1/keys", headers=admin)
    assert listed.status_code == 200
    text = listed.get_data(as_text=True)
    assert victim["Authorization"].removeprefix("Bearer ") not in text and "key_hash" not in text
    row = next(k for k in listed.get_json()["keys"] if k["name"] == "victim")
    assert row["scopes"] == ["read", "send"] and row["revoked_at"] is None

    assert client.get("/v1/keys", headers=victim).status_code == 403
    assert client.delete(f"/v1/keys/{row['id']}", headers=admin, json={}).status_code == 422  # reason required
    r = client.delete(f"/v1/keys/{row['id']}", headers=admin, json={"reason": "leaked in a log"})
    assert r.status_code == 200 and r.get_json()["revoked_at"]
    assert client.get("/v1/messages/nope", headers=victim).status_code == 401    # at once, despite the cache
    assert client.delete("/v1/keys/nope", headers=admin, json={"reason": "x"}).status_code == 404
    with state.db.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "key.revoke"))
        assert entry.subject == f"key:{row['id']}" and entry.actor == "root" and entry.reason == "leaked in a log"


def test_cli_lists_and_revokes_and_other_processes_follow_within_the_ttl(run, make_app, state, make_key):
    victim = make_key(["read"], name="victim")
    # A second server process reading the same database with its own (5 s) cache; its cache
    # clock is ours to move.
    other = make_app()
    from orchestrator.app_state import EXTENSION_KEY

    now = [1000.0]
    cache = other.extensions[EXTENSION_KEY].key_cache
    cache.clock = lambda: now[0]
    other_client = other.test_client()
    r0 = other_client.get("/v1/messages/nope", headers=victim)
    assert r0.status_code == 404, r0.get_data(as_text=True)

    listed = [json.loads(line) for line in run("keys", "list").stdout.splitlines()]
    row = next(k for k in listed if k["name"] == "victim")
    assert set(row) == {"id", "name", "scopes", "created_at", "revoked_at", "rate_limit_per_minute"}
    result = run("keys", "revoke", row["id"], "--reason", "rotated")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["revoked_at"]

    assert other_client.get("/v1/messages/nope", headers=victim).status_code == 404   # still cached
    now[0] += cache.ttl + 0.1
    assert other_client.get("/v1/messages/nope", headers=victim).status_code == 401
    again = run("keys", "revoke", row["id"], "--reason", "rotated")
    assert json.loads(again.stdout)["already_revoked"] is True


def test_set_scopes_to_nothing_is_refused(run, make_key, state):
    make_key(["send"], name="k")
    for empty in ("", " , "):
        result = run("keys", "set-scopes", key_id(state, "k"), "--scopes", empty, "--reason", "x")
        assert result.exit_code != 0 and "revoke" in result.output
    result = run("keys", "set-scopes", key_id(state, "k"), "--scopes", " , ", "--reason", "x")
    assert result.exit_code != 0 and "revoke" in result.output
