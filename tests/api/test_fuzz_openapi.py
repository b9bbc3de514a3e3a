"""Schemathesis against the generated document, on SQLite and PostgreSQL: every operation
gets positive and negative cases (bounded, deterministic), and every response must be a
non-5xx whose status, content type, headers and body the document declares.

Bounded: FUZZ_EXAMPLES cases per operation and mode (default 20; well under a minute per database
on 2 cores). `FUZZ_EXAMPLES=200 pytest tests/api/test_fuzz_openapi.py` for a longer run."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.api.openapi import build_spec

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# Served by the ASGI app on the event loop (a stream that never ends), not by Flask.
NOT_FUZZED = {("GET", "/v1/inbox/stream")}


def _settings():
    return settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _runner(strategy, observe, *, app, headers):
    @given(case=strategy)
    @_settings()
    def run(case):
        response = case.call(app=app, headers=headers)
        observe(case, response)
        case.validate_response(response, checks=CHECKS)

    return run


def test_no_server_error_and_every_response_conforms(make_app, make_key, clock):
    app = make_app(RATE_LIMIT_PER_MINUTE="1000000")
    client = app.test_client()
    admin = make_key(("admin",), name="fuzz-admin")
    # A recipient and a user token, so user-token routes get past authentication.
    assert client.put("/v1/recipients/u-fuzz", json={"email": "ada@example.com"}, headers=admin).status_code == 201
    token = client.post("/v1/recipients/u-fuzz/inapp-token", headers=admin).get_json()["token"]
    user = {"Authorization": f"Bearer {token}"}
    with app.app_context():
        schema = schemathesis.openapi.from_dict(build_spec(app))

    failures: list[str] = []
    calls = 0
    succeeded: set[tuple[str, str]] = set()

    def record(label, response) -> None:
        nonlocal calls
        calls += 1
        if response.status_code < 300:
            succeeded.add(label)

    for result in schema.get_all_operations():
        operation = result.ok()
        label = (operation.method.upper(), operation.path)
        if label in NOT_FUZZED:
            continue
        security = operation.definition.raw.get("security") or []
        headers = user if any("userToken" in s for s in security) else admin
        strategies = [("examples", s) for s in schema.get_strategies_from_examples(operation)]
        strategies += [(mode.value, operation.as_strategy(generation_mode=mode))
                       for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
        for mode, strategy in strategies:
            run = _runner(strategy, lambda case, response, label=label: record(label, response),
                          app=app, headers=headers)
            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE.value, label  # nothing to negate: no parameters, no body
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every operation's failure, then report all
                failures.append(f"{label[0]} {label[1]} [{mode}]: {str(exc)[:1500]}")
    assert calls > 100
    print(f"{calls} calls; operations answered 2xx: {len(succeeded)}: {sorted(succeeded)}")
    assert len(succeeded) >= 20, sorted(succeeded)  # the cases reach the handlers, not only the guards
    assert not failures, "\n\n".join(failures)
