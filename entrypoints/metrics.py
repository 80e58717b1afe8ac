"""Prometheus metrics, correct across Hypercorn worker processes.

With PROMETHEUS_MULTIPROC_DIR set (`flamepay web --workers N` sets it before the workers
start) every process writes its samples to that folder and /metrics aggregates them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

NOTIFY_OUTCOMES = Counter("flamepay_notify_total", "Notifies answered, by result", ["result"])
NOTIFY_SECONDS = Histogram(
    "flamepay_notify_seconds",
    "Time to answer a notify",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CREDITS = Counter("flamepay_credits_total", "Orders credited through notifies")
OUTBOX_BACKLOG = Gauge(
    "flamepay_outbox_backlog", "Outbox messages not yet sent", multiprocess_mode="mostrecent"
)
PROVIDER_SECONDS = Histogram("flamepay_provider_call_seconds", "Provider call latency", ["call"])
PROVIDER_ERRORS = Counter("flamepay_provider_errors_total", "Provider call errors", ["call"])


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
