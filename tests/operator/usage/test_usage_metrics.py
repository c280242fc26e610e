"""Usage metrics: counted once per new record, in a registry of their own, bounded labels."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from sidelight_operator.usage.metrics import UsageMetrics
from sidelight_operator.usage.store import UsageStore
from tests.operator.usage.factory import T0, record

LABELS = {
    "namespace": "shop",
    "team": "payments",
    "application": "checkout",
    "environment": "prod",
    "model": "gpt-4o",
    "backend": "openai",
}


def fed(label_cap: int = 100) -> tuple[CollectorRegistry, UsageStore]:
    registry = CollectorRegistry()
    metrics = UsageMetrics(registry, label_cap=label_cap)
    store = UsageStore(clock=lambda: T0)
    store.listeners.append(metrics.observe)
    return registry, store


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {**LABELS, **labels})


def test_counters_follow_new_records_only() -> None:
    registry, store = fed()
    batch = [
        record("a", input_tokens=10, output_tokens=3, cost_usd=0.25, latency_ms=80),
        record(
            "b",
            input_tokens=5,
            output_tokens=2,
            cost_usd=0.5,
            latency_ms=3000,
            fallback=True,
            status=502,
            verdicts=("pass",),
        ),
    ]
    store.ingest(batch)
    store.ingest(batch)
    assert value(registry, "sidelight_usage_tokens_total", direction="input") == 15
    assert value(registry, "sidelight_usage_tokens_total", direction="output") == 5
    assert value(registry, "sidelight_usage_cost_usd_total") == 0.75
    assert value(registry, "sidelight_usage_requests_total") == 2
    assert value(registry, "sidelight_usage_errors_total") == 1
    assert value(registry, "sidelight_usage_fallbacks_total") == 1
    assert value(registry, "sidelight_usage_guardrail_verdicts_total", verdict="pass") == 1
    assert value(registry, "sidelight_usage_request_duration_seconds_count") == 2
    assert value(registry, "sidelight_usage_request_duration_seconds_bucket", le="0.1") == 1
    assert value(registry, "sidelight_usage_request_duration_seconds_bucket", le="2.5") == 1
    assert value(registry, "sidelight_usage_request_duration_seconds_bucket", le="5.0") == 2


def test_metrics_stay_out_of_the_global_registry() -> None:
    registry, store = fed()
    store.ingest([record("a")])
    assert REGISTRY.get_sample_value("sidelight_usage_requests_total", LABELS) is None
    assert value(registry, "sidelight_usage_requests_total") == 1


def test_label_values_over_the_cap_become_other() -> None:
    registry, store = fed(label_cap=2)
    store.ingest([record(f"r{i}", team=f"team-{i}") for i in range(5)])
    for team in ("team-0", "team-1"):
        assert value(registry, "sidelight_usage_requests_total", team=team) == 1
    assert value(registry, "sidelight_usage_requests_total", team="team-2") is None
    assert value(registry, "sidelight_usage_requests_total", team="other") == 3
    assert registry.get_sample_value("sidelight_usage_label_overflow_total", {"label": "team"}) == 3
    teams = {
        sample.labels["team"]
        for family in registry.collect()
        if family.name == "sidelight_usage_requests"
        for sample in family.samples
    }
    assert teams == {"team-0", "team-1", "other"}


def test_label_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        UsageMetrics(CollectorRegistry(), label_cap=0)
