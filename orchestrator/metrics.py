"""Prometheus metrics. One place defines them all, so names stay consistent.

Every process exposes its own (README, "Metrics"):
- `orchestrator serve --workers N` runs prometheus_client's multiprocess mode: each server
  process writes its samples to files in PROMETHEUS_MULTIPROC_DIR (serve creates one when
  unset) and `/metrics`, whichever process answers, adds them up (`exposition`).
- `orchestrator worker` and `orchestrator scheduler` answer on METRICS_PORT (`serve_port`).
Gauges say how processes combine: summed (open streams), the largest (backlogs, which only
the process holding the sweeper lease counts) or the most recent write (breaker states)."""

from __future__ import annotations

import os
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROC_ENV):  # a process given the directory (not made by serve) writes there
    os.makedirs(os.environ[MULTIPROC_ENV], exist_ok=True)

MESSAGES_ACCEPTED = Counter("orchestrator_messages_accepted_total", "Messages accepted",
                            ["category"], registry=REGISTRY)
ATTEMPTS_SENT = Counter("orchestrator_attempts_sent_total", "Attempts handed to a provider",
                        ["channel", "provider"], registry=REGISTRY)
ATTEMPTS_DELIVERED = Counter("orchestrator_attempts_delivered_total", "Attempts confirmed delivered",
                             ["channel", "provider"], registry=REGISTRY)
ATTEMPTS_FAILED = Counter("orchestrator_attempts_failed_total", "Attempts ended in failure",
                          ["channel", "provider", "error_class"], registry=REGISTRY)
RETRIES = Counter("orchestrator_retries_total", "Transient failures retried", ["channel", "provider"],
                  registry=REGISTRY)
FALLBACKS = Counter("orchestrator_fallbacks_total", "Fallback steps released", ["channel"], registry=REGISTRY)


class EscalationOutcome(StrEnum):
    """ESCALATIONS' `outcome` label."""

    FIRED = "fired"          # the watched status did not arrive in time: the escalation is sent
    CANCELLED = "cancelled"  # it did: nothing sent


ESCALATIONS = Counter("orchestrator_escalations_total", "Escalation steps fired or cancelled",
                      ["outcome"], registry=REGISTRY)
UNCERTAIN_SENDS = Counter("orchestrator_uncertain_sends_total",
                          "Sends whose outcome was unknown after their worker stopped mid-send, by how they "
                          "were settled (reconciled, not_sent, resent, fell_back, failed)",
                          ["channel", "resolution"], registry=REGISTRY)
RECEIPTS = Counter("orchestrator_receipts_total", "Receipt events ingested", ["source", "outcome"],
                   registry=REGISTRY)
QUEUE_LAG = Histogram("orchestrator_queue_lag_seconds", "From an attempt's due time to its claim",
                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60), registry=REGISTRY)
# Set by the process holding the sweeper lease; the others report 0 (take the max).
DUE_BACKLOG = Gauge("orchestrator_due_attempts", "Attempts due and not yet claimed (last sweep)",
                    registry=REGISTRY, multiprocess_mode="livemax")
OVERDUE_ATTEMPTS = Gauge("orchestrator_overdue_attempts",
                         "Attempts due for over a minute and not yet claimed (last sweep)",
                         registry=REGISTRY, multiprocess_mode="livemax")
OPEN_STREAMS = Gauge("orchestrator_open_streams", "In-app streams open", registry=REGISTRY,
                     multiprocess_mode="livesum")

# Provider calls: one observation per call to a provider's send (in-task retries included).
PROVIDER_SEND_SECONDS = Histogram("orchestrator_provider_send_duration_seconds", "Duration of one provider call",
                                  ["channel", "provider"], registry=REGISTRY,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PROVIDER_SENDS = Counter("orchestrator_provider_sends_total",
                         "Provider calls by outcome: ok, or the error class (transient, permanent, "
                         "configuration, unexpected)", ["channel", "provider", "outcome"], registry=REGISTRY)
BREAKER_STATE = Gauge("orchestrator_circuit_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                      ["provider"], registry=REGISTRY, multiprocess_mode="livemostrecent")

HTTP_REQUEST_SECONDS = Histogram("orchestrator_http_request_duration_seconds",
                                 "HTTP requests by route template (never the raw path), method and status",
                                 ["method", "route", "status"], registry=REGISTRY,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


class CallbackFailure(StrEnum):
    """CALLBACK_FAILURES' `outcome` label."""

    RETRY = "retry"    # will be retried
    FAILED = "failed"  # given up


CALLBACK_FAILURES = Counter("orchestrator_status_callback_failures_total",
                            "Status webhooks to product backends that failed: retry (will be retried) "
                            "or failed (given up)", ["outcome"], registry=REGISTRY)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def _collecting_registry() -> CollectorRegistry:
    """REGISTRY, or in multiprocess mode a registry that adds up every process's files."""
    if not multiprocess():
        return REGISTRY
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    return registry


def exposition() -> bytes:
    """The text format: every process's samples added up in multiprocess mode, else this
    process's."""
    return generate_latest(_collecting_registry())


def process_exiting() -> None:
    """A server process leaving: its live gauges (streams, states) stop counting."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(os.getpid())


def serve_port(host: str, port: int) -> None:
    """Metrics of a worker or scheduler process on their own port (prometheus_client's
    server, in a daemon thread), in the same format as the API's /metrics."""
    from prometheus_client import start_http_server

    start_http_server(port, addr=host, registry=_collecting_registry())
