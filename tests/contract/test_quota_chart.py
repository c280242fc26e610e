"""The chart's PrometheusRule for quotas: rendered where the kind exists, on metrics that exist."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, generate_latest

from sidelight_operator.quota import Ledger
from sidelight_operator.quota.metrics import QuotaMetrics
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from tests.contract.test_chart import one, render


def exposed_metrics() -> set[str]:
    """The metric names the operator's /metrics shows for a quota lent from."""
    ledger = Ledger()
    registry = CollectorRegistry()
    QuotaMetrics(registry, ledger)
    quota = snapshot_pb2.Quota(
        source=snapshot_pb2.ResourceRef(kind="LLMQuota", namespace="shop", name="q"),
        window=snapshot_pb2.QuotaWindow(rolling_seconds=3600),
        limit_tokens=100,
        soft_threshold_percent=80,
    )
    ledger.exchange("pod", quota, control_plane_pb2.LeaseAsk(quota="shop/q", lease_id="a"))
    text = generate_latest(registry).decode()
    return set(re.findall(r"^(sidelight_quota_\w+)\{", text, re.M))


def test_prometheus_rule_alerts_on_soft_and_hard_thresholds() -> None:
    objects = render("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
    rule = one(objects, "PrometheusRule")
    [group] = rule["spec"]["groups"]
    alerts = {r["alert"]: r for r in group["rules"]}
    assert set(alerts) == {"SidelightQuotaSoftThreshold", "SidelightQuotaHardLimit"}
    assert alerts["SidelightQuotaSoftThreshold"]["labels"]["severity"] == "warning"
    assert alerts["SidelightQuotaHardLimit"]["labels"]["severity"] == "critical"
    used = {name for r in group["rules"] for name in re.findall(r"sidelight_quota_\w+", str(r))}
    assert used == {
        "sidelight_quota_soft_limit_reached",
        "sidelight_quota_hard_limit_reached",
        "sidelight_quota_used_ratio",
    }
    assert used <= exposed_metrics()
    summary = alerts["SidelightQuotaSoftThreshold"]["annotations"]["summary"]
    assert (
        summary == "LLMQuota {{ $labels.namespace }}/{{ $labels.quota }} crossed its soft threshold"
    )


def test_no_prometheus_rule_without_the_kind() -> None:
    assert not [o for o in render() if o["kind"] == "PrometheusRule"]
    disabled = render(
        "--api-versions",
        "monitoring.coreos.com/v1/PrometheusRule",
        "--set",
        "prometheusRule.enabled=false",
    )
    assert not [o for o in disabled if o["kind"] == "PrometheusRule"]
