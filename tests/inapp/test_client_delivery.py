"""Delivery of the in-app client module: CORS on every client asset (a module script is
fetched in CORS mode, so a page on another origin gets nothing without it), a versioned
immutable URL named by the manifest with its SRI integrity, strong ETags and 304s, gzip;
and the npm package is the very file the server serves."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ALLOWED = "https://app.example.com"
CLIENT_DIR = Path(__file__).resolve().parents[2] / "orchestrator" / "inapp" / "client"


@pytest.fixture
def cors_client(make_app):
    return make_app(INAPP_CORS_ORIGINS=ALLOWED).test_client()


def manifest(client) -> dict:
    r = client.get("/client/manifest.json", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    return r.get_json()


def test_the_manifest_names_the_versioned_url_its_digests_and_sizes(client):
    raw = client.get("/client/orchestrator-inbox.js", headers={"Accept-Encoding": "identity"}).data
    doc = manifest(client)
    digest = hashlib.sha256(raw).hexdigest()
    assert doc["sha256"] == digest
    assert doc["url"] == f"/client/orchestrator-inbox.{digest[:12]}.js"
    assert doc["integrity"] == "sha384-" + base64.b64encode(hashlib.sha384(raw).digest()).decode()
    assert doc["size"] == len(raw) == len((CLIENT_DIR / "orchestrator-inbox.js").read_bytes())
    zipped = client.get("/client/orchestrator-inbox.js", headers={"Accept-Encoding": "gzip"}).data
    assert doc["gzip_size"] == len(zipped) < doc["size"] / 2
    # The versioned URL serves the same bytes, cached for a year.
    r = client.get(doc["url"], headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.data == raw
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Type"].startswith("text/javascript")
    assert client.get("/client/orchestrator-inbox.js").headers["Cache-Control"] == "public, max-age=300"


@pytest.mark.parametrize("version", ["000000000000", "abc", "x" * 300, "%00", "é"])
def test_another_version_is_404_json_naming_the_current_one(client, version):
    r = client.get(f"/client/orchestrator-inbox.{version}.js")
    assert r.status_code in (404, 422), r.data
    error = r.get_json()["error"]
    assert error["field"] == "version"
    if r.status_code == 404:
        assert manifest(client)["url"] in error["message"]


@pytest.mark.parametrize("path", ["/client/orchestrator-inbox.js", "/client/example.html", "versioned"])
def test_strong_etag_304_and_gzip_on_every_asset(client, path):
    if path == "versioned":
        path = manifest(client)["url"]
    plain = client.get(path, headers={"Accept-Encoding": "identity"})
    zipped = client.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers and zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    for r in (plain, zipped):
        assert {"Accept-Encoding", "Origin"} <= {v.strip() for v in r.headers["Vary"].split(",")}
        assert r.headers["ETag"].startswith('"') and not r.headers["ETag"].startswith("W/")
    # Two representations, two strong ETags.
    assert plain.headers["ETag"] != zipped.headers["ETag"]
    again = client.get(path, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == zipped.headers["ETag"] and again.headers["Cache-Control"]
    r = client.get(path, headers={"Accept-Encoding": "identity", "If-None-Match": f'"x", {plain.headers["ETag"]}'})
    assert r.status_code == 304
    assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200
    assert client.get(path, headers={"Accept-Encoding": "gzip;q=0"}).headers.get("Content-Encoding") is None


def test_the_small_manifest_is_sent_as_is_with_a_strong_etag(client):
    r = client.get("/client/manifest.json", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in r.headers and json.loads(r.data)["url"]
    assert "Accept-Encoding" in r.headers["Vary"] and not r.headers["ETag"].startswith("W/")
    assert client.get("/client/manifest.json", headers={"If-None-Match": r.headers["ETag"]}).status_code == 304


@pytest.mark.parametrize("path", ["/client/orchestrator-inbox.js", "/client/example.html", "/client/manifest.json",
                                  "versioned", "/client/orchestrator-inbox.000000000000.js"])
def test_every_client_asset_answers_cors_for_allowed_origins_only(cors_client, path):
    if path == "versioned":
        path = manifest(cors_client)["url"]
    r = cors_client.get(path, headers={"Origin": ALLOWED})
    assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "Origin" in r.headers["Vary"] and "Access-Control-Allow-Credentials" not in r.headers
    cached = cors_client.get(path, headers={"Origin": ALLOWED, "If-None-Match": r.headers.get("ETag", '"-"')})
    assert cached.headers["Access-Control-Allow-Origin"] == ALLOWED  # a 304 too
    r = cors_client.get(path, headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers and "Origin" in r.headers["Vary"]


def test_without_configured_origins_no_asset_answers_cross_origin(client):
    r = client.get("/client/orchestrator-inbox.js", headers={"Origin": ALLOWED})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


def test_any_origin_when_configured_so(make_app):
    client = make_app(INAPP_CORS_ORIGINS="*").test_client()
    r = client.get("/client/orchestrator-inbox.js", headers={"Origin": "https://anyone.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_the_npm_package_is_the_served_file_with_its_types(client):
    package = json.loads((CLIENT_DIR / "package.json").read_text(encoding="utf-8"))
    main = CLIENT_DIR / package["main"]
    served = client.get("/client/orchestrator-inbox.js", headers={"Accept-Encoding": "identity"}).data
    assert main.read_bytes() == served
    assert (CLIENT_DIR / package["exports"]["."]["default"]).resolve() == main.resolve()
    assert client.get(manifest(client)["url"], headers={"Accept-Encoding": "identity"}).data == main.read_bytes()
    types = (CLIENT_DIR / package["types"]).read_text(encoding="utf-8")
    assert package["exports"]["."]["types"] == f"./{package['types']}"
    assert set(package["files"]) == {package["main"], package["types"]}
    # The declarations describe the element, its tokenProvider and its events.
    for needle in ('"orchestrator-inbox": OrchestratorInboxElement', "tokenProvider: TokenProvider | null",
                   '"orchestrator-inbox-signed-out": CustomEvent<{ reason: SignOutReason }>',
                   '"orchestrator-inbox-click": CustomEvent<InboxItem>'):
        assert needle in types
    # Every name the module exports is declared.
    exported = {line.split()[2].split("(")[0].rstrip(";=") for line in main.read_text(encoding="utf-8").splitlines()
                if line.startswith("export ") and line.split()[1] in ("class", "const", "function")}
    for name in exported:
        assert f" {name}" in types, name


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_pack_ships_exactly_the_served_module_and_its_types(tmp_path):
    out = subprocess.run(["npm", "pack", "--dry-run", "--json", "--ignore-scripts"], cwd=CLIENT_DIR,
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "npm_config_cache": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    files = {f["path"] for f in json.loads(out.stdout)[0]["files"]}
    assert files == {"package.json", "orchestrator-inbox.js", "orchestrator-inbox.d.ts"}
