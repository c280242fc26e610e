"""The Grafana dashboard queries only what the operator exports, and the chart ships it.

Every metric name in a query of charts/sidelight/dashboards/sidelight-usage.json
is one the operator's usage metrics expose (a registry fed with records that
touch every series), and every label it groups or filters by is one of
theirs. The chart renders the dashboard's ConfigMap only when asked, the
ServiceMonitor only where its kind exists, and the usage store's volume.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from prometheus_client import CollectorRegistry

from sidelight_cli.main import build_parser
from sidelight_operator.usage.metrics import UsageMetrics
from tests.contract.test_chart import CHART, one, render
from tests.operator.usage.factory import record

DASHBOARD = CHART / "dashboards" / "sidelight-usage.json"
METRIC = re.compile(r"\bsidelight_[a-z0-9_]+")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
MATCHER = re.compile(r"([a-z_]+)=~")
VARIABLE = re.compile(r"\$(\w+)")
GRAFANA_VARIABLES = {"__range", "__rate_interval", "datasource"}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def queries() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and template variables."""
    board = dashboard()
    found = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    found += [v["definition"] for v in board["templating"]["list"] if "definition" in v]
    return found


def exported() -> tuple[set[str], set[str]]:
    """Sample names and label names of the usage metrics, every series touched."""
    registry = CollectorRegistry()
    metrics = UsageMetrics(registry, label_cap=1)
    metrics.observe(
        [
            record("a", fallback=True, status=500, verdicts=("blocked",)),
            record("b", team="other-team"),  # over the cap: the overflow counter
        ]
    )
    names: set[str] = set()
    labels: set[str] = set()
    for family in registry.collect():
        for sample in family.samples:
            names.add(sample.name)
            labels.update(sample.labels)
    return names, labels


def test_every_queried_metric_is_exported() -> None:
    names, _ = exported()
    queried = {name for query in queries() for name in METRIC.findall(query)}
    assert queried, "the dashboard queries nothing"
    assert queried <= names, f"not exported: {sorted(queried - names)}"


def test_every_grouped_or_filtered_label_is_exported() -> None:
    _, labels = exported()
    used = {
        label.strip()
        for query in queries()
        for group in GROUPING.findall(query)
        for label in group.split(",")
    } | {label for query in queries() for label in MATCHER.findall(query)}
    assert used <= labels, f"not a label of the usage metrics: {sorted(used - labels)}"


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    assert board["uid"] == "sidelight-usage"
    variables = {v["name"] for v in board["templating"]["list"]}
    used = {name for query in queries() for name in VARIABLE.findall(query)}
    assert used <= variables | GRAFANA_VARIABLES
    titles = " ".join(panel["title"] for panel in board["panels"])
    for topic in ("by team", "by model", "Tokens", "errors", "Fallback", "Guardrail", "Latency"):
        assert topic in titles


def test_dashboard_config_map_only_when_enabled() -> None:
    assert not [o for o in render() if o["kind"] == "ConfigMap" and "dashboard" in str(o)]
    objects = render("--set", "grafanaDashboard.enabled=true")
    config_map = one(objects, "ConfigMap", "sidelight-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["sidelight-usage.json"]) == dashboard()
    client.ApiClient().deserialize(json.dumps(config_map), "V1ConfigMap", "application/json")


def test_service_monitor_scrapes_the_usage_port() -> None:
    assert not [
        o
        for o in render("--api-versions", "monitoring.coreos.com/v1")
        if o["kind"] == "ServiceMonitor"
    ]
    objects = render("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    (port,) = [p for p in one(objects, "Service")["spec"]["ports"] if p["name"] == endpoint["port"]]
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    (container_port,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    args = build_parser().parse_args(["operator", *container["args"]])
    assert args.usage_listen == ("0.0.0.0", container_port["containerPort"])


def _usage_volume(*options: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    objects = render(*options)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(["operator", *container["args"]])
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "usage"]
    assert Path(mount["mountPath"]) == args.usage_store.parent
    assert args.usage_retention_days == 30
    (volume,) = [v for v in pod["volumes"] if v["name"] == "usage"]
    return volume, [o for o in objects if o["kind"] == "PersistentVolumeClaim"]


def test_usage_store_on_an_empty_dir_by_default() -> None:
    volume, claims = _usage_volume()
    assert volume["emptyDir"] == {"sizeLimit": "1Gi"}
    assert claims == []


@pytest.mark.parametrize(
    ("options", "claim"),
    [
        (("--set", "usage.persistence.enabled=true"), "sidelight-operator-usage"),
        (
            (
                "--set",
                "usage.persistence.enabled=true",
                "--set",
                "usage.persistence.existingClaim=mine",
            ),
            "mine",
        ),
    ],
)
def test_usage_store_on_a_claim(options: tuple[str, ...], claim: str) -> None:
    volume, claims = _usage_volume(*options)
    assert volume["persistentVolumeClaim"] == {"claimName": claim}
    if claim == "mine":
        assert claims == []
        return
    (created,) = claims
    assert created["metadata"]["name"] == claim
    assert created["spec"]["resources"]["requests"]["storage"] == "2Gi"
    client.ApiClient().deserialize(
        json.dumps(created), "V1PersistentVolumeClaim", "application/json"
    )
