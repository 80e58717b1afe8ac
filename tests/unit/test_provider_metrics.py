"""Provider call metrics move: every HTTP call to the gateway is timed and its failures are
counted per call (they were declared and never moved)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import REGISTRY

from adapters.provider.dialects import GGUSONEPAY
from entrypoints import metrics
from flamepay.errors import ProviderRejected, ProviderTimeout
from tests.helpers.gateway_doubles import (
    NUMBER,
    REQUEST,
    Gateway,
    client,
    create_data,
    ok,
    query_data,
)


def _sample(name: str, call: str) -> float:
    return REGISTRY.get_sample_value(name, {"call": call}) or 0.0


def test_the_client_reports_each_call_with_its_outcome() -> None:
    seen: list[tuple[str, bool]] = []
    gateway = Gateway(
        ok(create_data(GGUSONEPAY)),
        ok(query_data(GGUSONEPAY)),
        {"code": 9999, "msg": "channel closed"},
    )
    gw = client(GGUSONEPAY, gateway)
    gw.on_call = lambda call, seconds, failed: seen.append((call, failed)) or None
    gw.create_order(REQUEST)
    gw.query_order(NUMBER)
    with pytest.raises(ProviderRejected):
        gw.query_order(NUMBER)
    assert seen == [("create", False), ("query", False), ("query", True)]


def test_a_timeout_is_a_failed_call_for_each_attempt() -> None:
    seen: list[tuple[str, bool]] = []
    sleeps: list[float] = []
    gw = client(GGUSONEPAY, Gateway(httpx.ConnectTimeout), sleeps, attempts=2)
    gw.on_call = lambda call, seconds, failed: seen.append((call, failed)) or None
    with pytest.raises(ProviderTimeout):
        gw.query_order(NUMBER)
    assert seen == [("query", True), ("query", True)]


def test_the_metrics_hook_moves_the_histogram_and_the_error_counter() -> None:
    before = (
        _sample("flamepay_provider_call_seconds_count", "close"),
        _sample("flamepay_provider_errors_total", "close"),
    )
    metrics.observe_provider_call("close", 0.02, failed=False)
    metrics.observe_provider_call("close", 0.5, failed=True)
    after = (
        _sample("flamepay_provider_call_seconds_count", "close"),
        _sample("flamepay_provider_errors_total", "close"),
    )
    assert (after[0] - before[0], after[1] - before[1]) == (2, 1)
