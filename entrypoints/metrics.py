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
# The outbox is sent by the bot's process, which serves no /metrics in a split deployment:
# its backlog is watched by the outbox fault alert (oldest unsent message over 5 minutes).
PROVIDER_SECONDS = Histogram("flamepay_provider_call_seconds", "Provider call latency", ["call"])
PROVIDER_ERRORS = Counter("flamepay_provider_errors_total", "Provider call errors", ["call"])


def observe_provider_call(call: str, seconds: float, failed: bool) -> None:
    """The provider client's on_call hook: latency and errors per call."""
    PROVIDER_SECONDS.labels(call).observe(seconds)
    if failed:
        PROVIDER_ERRORS.labels(call).inc()


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
