"""Policy versions through the API: four eyes, activation, re-explaining old messages,
validation, diff and scope enforcement — on SQLite and PostgreSQL."""

from __future__ import annotations

from .conftest import DEFAULT_VERSION, draft_text, go_live, send

NEW = "2099-01-01.1"


def test_draft_needs_a_second_person_then_routes_new_messages(client, people, recipient, state):
    before = send(client, people)
    assert before["route"]["policy_version"] == DEFAULT_VERSION
    assert [s["channel"] for s in before["route"]["steps"]][0] == "sms"

    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW), "reason": "no SMS"})
    assert r.status_code == 201, r.get_json()
    assert r.get_json() | {"status": "draft", "author": "alice", "version": NEW} == r.get_json()

    # A draft cannot be activated, and its author cannot approve it (not even with another key).
    r = client.post(f"/v1/policies/{NEW}/activate", headers=people["bob"], json={"reason": "early"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "invalid_transition"
    r = client.post(f"/v1/policies/{NEW}/approve", headers=people["alice_approver"], json={"reason": "mine"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "self_approval_forbidden"

    r = client.post(f"/v1/policies/{NEW}/approve", headers=people["bob"], json={"reason": "reviewed"})
    assert r.status_code == 200 and r.get_json()["approved_by"] == "bob"
    assert state.policies.active().version == DEFAULT_VERSION  # approved is not live
    r = client.post(f"/v1/policies/{NEW}/activate", headers=people["bob"], json={"reason": "go live"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["status"] == "active" and r.get_json()["activated_at"]

    listed = {p["version"]: p for p in client.get("/v1/policies", headers=people["carol"]).get_json()["policies"]}
    assert listed[NEW]["status"] == "active" and listed[DEFAULT_VERSION]["status"] == "retired"
    assert [p["status"] for p in listed.values()].count("active") == 1

    after = send(client, people)
    assert after["route"]["policy_version"] == NEW
    assert [s["channel"] for s in after["route"]["steps"]] == ["email"]

    # The old message still re-explains exactly, with the version that decided it.
    for sent, version in ((before, DEFAULT_VERSION), (after, NEW)):
        r = client.get(f"/v1/messages/{sent['id']}/explain", headers=people["carol"])
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        assert body["policy_version"] == version
        assert body["matches"] is True, body["differences"]
        assert body["replayed"]["steps"] == body["stored"]["steps"] == sent["route"]["steps"]
        assert body["stored"]["trace"]

    # Lifecycle is one way: an active version cannot be edited or approved again.
    r = client.put(f"/v1/policies/{NEW}", headers=people["alice"], json={"document": draft_text(NEW)})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "invalid_transition"


def test_show_version_lists_rules_with_citations(client, people):
    r = client.get(f"/v1/policies/{DEFAULT_VERSION}", headers=people["carol"])
    assert r.status_code == 200
    body = r.get_json()
    rule = next(x for x in body["rules"] if x["id"] == "otp-by-sms")
    assert rule["title"] and rule["description"] and rule["cites"]
    assert body["status"] == "active" and "rules:" in body["document"]
    assert client.get("/v1/policies/nope", headers=people["carol"]).status_code == 404


def test_invalid_draft_is_422_naming_rule_and_field(client, people):
    bad = draft_text(NEW).replace("    then: {exclude: push}\n", "    then: {exclude: fax}\n", 1)
    r = client.post("/v1/policies", headers=people["alice"], json={"document": bad})
    assert r.status_code == 422
    err = r.get_json()["error"]
    assert err["code"] == "invalid_policy"
    assert any(d["rule"] == "push-needs-device" and d["field"] and "fax" in d["message"] for d in err["details"])
    r = client.post("/v1/policies", headers=people["alice"], json={"document": "rules: [\n"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "invalid_policy"
    r = client.post("/v1/policies", headers=people["alice"], json={"document": "/etc/passwd"})
    assert r.status_code == 422  # never read as a file path


def test_duplicate_version_is_409_and_edits_keep_the_version(client, people):
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(DEFAULT_VERSION)})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "version_exists"
    assert client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW)}).status_code == 201
    r = client.put(f"/v1/policies/{NEW}", headers=people["alice"],
                   json={"document": draft_text("2099-02-02.1"), "reason": "rename"})
    assert r.status_code == 422 and r.get_json()["error"]["code"] == "version_mismatch"
    edited = draft_text(NEW).replace("title: One-time codes go by SMS", "title: One-time codes go by email", 1)
    r = client.put(f"/v1/policies/{NEW}", headers=people["alice"], json={"document": edited, "reason": "title"})
    assert r.status_code == 200, r.get_json()
    # An editor counts as an author: bob edits, so bob cannot approve; carol has no approve scope.
    r = client.put(f"/v1/policies/{NEW}", headers=people["bob"], json={"document": edited})
    assert r.status_code == 403  # bob lacks policy:write


def test_editor_cannot_approve(client, people, make_key):
    dave = make_key(("policy:write", "policy:approve"), name="dave")
    assert client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW)}).status_code == 201
    edited = draft_text(NEW).replace("title: One-time codes go by SMS", "title: Codes", 1)
    assert client.put(f"/v1/policies/{NEW}", headers=dave, json={"document": edited}).status_code == 200
    r = client.post(f"/v1/policies/{NEW}/approve", headers=dave, json={})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "self_approval_forbidden"


def test_diff_names_the_rule_and_the_kind_of_change(client, people):
    assert client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(NEW)}).status_code == 201
    r = client.get(f"/v1/policies/{DEFAULT_VERSION}/diff/{NEW}", headers=people["carol"])
    assert r.status_code == 200
    changes = r.get_json()["changes"]
    effect = [c for c in changes if c["subject"] == "otp-by-sms" and c["kind"] == "effect_changed"]
    assert len(effect) == 1
    assert "otp-by-sms" in effect[0]["sentence"] and "effect changed" in effect[0]["sentence"]
    assert "exclude: sms" in effect[0]["sentence"]
    assert any(c["kind"] == "reason_changed" and c["subject"] == "otp-by-sms" for c in changes)
    assert any(c["kind"] == "version_changed" for c in changes)


def test_scopes_are_enforced(client, people):
    doc = {"document": draft_text(NEW)}
    assert client.get("/v1/policies", headers=people["backend"]).status_code == 403
    assert client.post("/v1/policies", headers=people["carol"], json=doc).status_code == 403
    assert client.post("/v1/policies", headers=people["bob"], json=doc).status_code == 403
    assert client.post("/v1/policies", headers=people["alice"], json=doc).status_code == 201
    assert client.post(f"/v1/policies/{NEW}/approve", headers=people["carol"], json={}).status_code == 403
    assert client.post(f"/v1/policies/{NEW}/activate", headers=people["alice"], json={}).status_code == 403
    assert client.get("/v1/audit", headers=people["backend"]).status_code == 403
    assert client.get("/v1/audit/verify", headers=people["alice_approver"]).status_code == 403
    assert client.get("/v1/decisions.csv", headers=people["backend"]).status_code == 403
    assert client.get("/v1/policies").status_code == 401
    r = client.get("/v1/policies", headers=people["backend"])
    assert r.get_json()["error"]["code"] == "forbidden"


def test_openapi_lists_the_compliance_routes(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for p in ("/v1/policies", "/v1/policies/{version}/approve", "/v1/audit/verify", "/v1/decisions.csv",
              "/v1/messages/{message_id}/explain", "/v1/policies/{version_a}/diff/{version_b}"):
        assert p in paths


def test_go_live_helper_and_rollforward(client, people, recipient):
    go_live(client, people, NEW, draft_text(NEW))
    second = draft_text("2099-03-03.1", otp_without_sms=False)
    go_live(client, people, "2099-03-03.1", second)
    assert send(client, people)["route"]["policy_version"] == "2099-03-03.1"
    statuses = {p["version"]: p["status"]
                for p in client.get("/v1/policies", headers=people["carol"]).get_json()["policies"]}
    assert statuses == {DEFAULT_VERSION: "retired", NEW: "retired", "2099-03-03.1": "active"}


def test_other_processes_pick_up_the_new_active_version(make_app, client, people):
    from orchestrator.app_state import EXTENSION_KEY

    other = make_app().extensions[EXTENSION_KEY].policies  # a second app = another process
    assert other.active().version == DEFAULT_VERSION
    go_live(client, people, NEW, draft_text(NEW))
    other.refresh_seconds = 0  # instead of waiting REFRESH_SECONDS
    assert other.active().version == NEW
