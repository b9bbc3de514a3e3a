"""One provider call, measured: its duration per provider and its outcome (ok, or the
error class). Every send goes through `observed_send`, so the latency histogram and the
error rate an operator alerts on cover each provider alike."""

from __future__ import annotations

import time

from providers.base import Delivery, Provider, ProviderError, SendResult

from .. import metrics

OK = "ok"
UNEXPECTED = "unexpected"


def observed_send(provider: Provider, delivery: Delivery) -> SendResult:
    started = time.perf_counter()
    outcome = UNEXPECTED
    try:
        result = provider.send(delivery)
        outcome = OK
        return result
    except ProviderError as exc:
        outcome = exc.error_class.value
        raise
    finally:
        channel = str(delivery.channel)
        metrics.PROVIDER_SEND_SECONDS.labels(channel, provider.name).observe(time.perf_counter() - started)
        metrics.PROVIDER_SENDS.labels(channel, provider.name, outcome).inc()
