"""Hostile policy documents and reasons on the policy routes (issue #19 §1, §2): a read-only
`compliance:read` key can post any document to simulate, so each is refused with a 422 naming
`document` in bounded time and memory, never a 500, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from tests.compliance.conftest import draft_text
from tests.policies.test_yaml_text import alias_bomb

DOCUMENTS = {
    "alias_bomb": alias_bomb(),
    "date_year_zero": "version: 0000-01-01\n",
    "date_out_of_range": "version: 2026-13-45\n",
    "huge_integer": "version: " + "9" * 10_000 + "\n",
    "deep_nesting": "version: " + "[" * 10_000 + "\n",
    "nan": "version: x\nthresholds: {dormant_after_days: .nan}\n",
    "binary": "version: !!binary aGVsbG8=\n",
    "surrogate_escape": 'version: "\\ud800"\n',
    "nul_escape": 'version: "a\\0"\n',
    "not_a_mapping": "- a\n- b\n",
}


@pytest.mark.parametrize("case", sorted(DOCUMENTS))
def test_hostile_documents_are_422_naming_the_document(client, people, case):
    for key, path, body in (("carol", "/v1/policies/simulate", {"document": DOCUMENTS[case]}),
                            ("alice", "/v1/policies", {"document": DOCUMENTS[case], "reason": "r"})):
        r = client.post(path, headers=people[key], json=body)
        assert r.status_code == 422, (case, path, r.status_code, r.get_data(as_text=True)[:300])
        err = r.get_json()["error"]
        assert (err["code"], err["field"]) == ("invalid_policy", "document"), err


def test_the_alias_bomb_costs_under_2s_and_50mb(client, people):
    tracemalloc.start()
    cpu = time.process_time()
    r = client.post("/v1/policies/simulate", headers=people["carol"], json={"document": alias_bomb()})
    spent, peak = time.process_time() - cpu, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.status_code == 422 and "aliases" in r.get_json()["error"]["message"]
    assert spent < 2 and peak < 50_000_000, (spent, peak)  # a bound: 30 s and 3.5 GB before


def test_a_valid_document_with_anchors_still_simulates(client, people):
    text = draft_text().replace("    reason: the message expired before it could be sent",
                                "    reason: &expired the message expired before it could be sent", 1)
    text = text.replace("    reason: the user has not consented to marketing messages", "    reason: *expired", 1)
    assert "*expired" in text
    r = client.post("/v1/policies/simulate", headers=people["carol"], json={"document": text})
    assert r.status_code == 200, r.get_json()


@pytest.mark.parametrize("reason", ["\ud800", "ok \udfff", "nul \x00"])
def test_an_unstorable_reason_is_named(client, people, reason):
    r = client.post("/v1/policies", headers=people["alice"], json={"document": draft_text(), "reason": reason})
    assert r.status_code == 422, r.get_data(as_text=True)[:300]
    assert r.get_json()["error"]["field"] == "reason"
