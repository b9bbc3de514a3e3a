"""docker/grafana-dashboard.json and docker/prometheus-alerts.yml: valid, and every metric and
label they query exists in orchestrator.metrics (a renamed metric breaks this test, not the
on-call's dashboard)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from orchestrator import metrics

DOCKER = Path(__file__).resolve().parents[2] / "docker"
_SELECTOR = re.compile(r"\b(orchestrator_[a-z0-9_]+)(\{[^}]*\})?")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def defined() -> dict[str, set[str]]:
    """Every series name orchestrator.metrics exposes → its label names."""
    series: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for suffix in SUFFIXES[obj._type]:
                labels = set(obj._labelnames) | ({"le"} if suffix == "_bucket" else set())
                series[obj._name + suffix] = labels
    return series


def check(expr: str, where: str) -> set[str]:
    series = defined()
    used = set()
    for name, selector in _SELECTOR.findall(expr):
        assert name in series, f"{where}: {name} is not a metric of orchestrator.metrics"
        used.add(name)
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector or ""):
            assert label in series[name], f"{where}: {name} has no label {label!r}"
    labels_of_used = set().union(*(series[n] for n in used)) if used else set()
    for group in _BY.findall(expr):
        for label in filter(None, (g.strip() for g in group.split(","))):
            assert label in labels_of_used, f"{where}: no metric in the expression has label {label!r}"
    assert used, f"{where}: queries no orchestrator metric"
    return used


def alert_rules() -> list[dict]:
    doc = yaml.safe_load((DOCKER / "prometheus-alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alert_rules_are_valid_and_query_real_metrics():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"} and rule["annotations"]["summary"], rule
        check(rule["expr"], rule["alert"])


@pytest.mark.parametrize("metric", ["orchestrator_queue_lag_seconds_bucket", "orchestrator_provider_sends_total",
                                    "orchestrator_circuit_breaker_state",
                                    "orchestrator_status_callback_failures_total"])
def test_the_on_call_essentials_are_alerted_on(metric):
    """Queue lag, provider error rate, breaker open, webhook failures (issue #14)."""
    assert any(metric in r["expr"] for r in alert_rules())


def test_the_dashboard_is_valid_and_queries_real_metrics():
    dashboard = json.loads((DOCKER / "grafana-dashboard.json").read_text())
    assert dashboard["title"] and dashboard["panels"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used |= check(target["expr"], panel["title"])
    # Every metric the service defines is on the dashboard somewhere.
    families = {name for name in defined() if not name.endswith(("_count", "_sum"))}
    missing = {f for f in families if f not in used and f.replace("_bucket", "_count") not in used
               and f.replace("_bucket", "") not in {u.removesuffix("_count") for u in used}}
    assert not missing, f"not on the dashboard: {sorted(missing)}"


def test_the_checker_catches_a_renamed_metric_or_label():
    with pytest.raises(AssertionError, match="not a metric"):
        check("rate(orchestrator_provider_send_total[5m])", "typo")
    with pytest.raises(AssertionError, match="no label"):
        check('orchestrator_circuit_breaker_state{channel="sms"}', "label")
