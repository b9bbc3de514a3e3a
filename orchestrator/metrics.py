"""Prometheus metrics. One place defines them all, so names stay consistent."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

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
DUE_BACKLOG = Gauge("orchestrator_due_attempts", "Attempts due and not yet claimed (last sweep)",
                    registry=REGISTRY)
OPEN_STREAMS = Gauge("orchestrator_open_streams", "In-app streams open in this process", registry=REGISTRY)
