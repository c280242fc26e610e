"""LLMQuota validation at admission, by the real API server: the CEL rules and their words.

crds/llmquota.yaml is applied to the local control plane; the issue's
example is admitted with its defaults written out, and each CEL rule refuses
a quota broken its way, with the rule's message naming the field. The
compile step repeats every rule (tests/operator/golden/compile/quota-*).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from test_crd_admission import Spec, manifest, removing, setting

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.processes import poll

CRD = Path(__file__).resolve().parents[1] / "crds" / "llmquota.yaml"
KIND = "LLMQuota"


def valid_spec() -> Spec:
    """The issue's example."""
    return {
        "scope": {"team": "payments"},
        "window": {"calendar": "month", "timeZone": "UTC"},
        "limits": {"tokens": 10_000_000, "costUSD": 500},
        "softThresholdPercent": 80,
        "notify": {"webhookSecretRef": {"name": "slack-hook", "key": "url"}},
        "hardAction": {"block": {}},
    }


CASES: list[tuple[str, Callable[[Spec], None], str]] = [
    (
        "both windows",
        setting("window.rolling", "24h"),
        "spec.window: Invalid value: set exactly one of calendar or rolling",
    ),
    (
        "time zone on a rolling window",
        lambda spec: spec.update(window={"rolling": "1h", "timeZone": "UTC"}),
        "spec.window.timeZone: Invalid value: timeZone applies to calendar windows only",
    ),
    (
        "no limit",
        setting("limits", {}),
        "spec.limits: Invalid value: set tokens, costUSD or both",
    ),
    (
        "both hard actions",
        setting("hardAction.downgradeTo", "gpt-4o-mini"),
        "spec.hardAction: Invalid value: set exactly one of block or downgradeTo",
    ),
    ("no window", removing("window"), "spec.window: Required value"),
    (
        "a week",
        setting("window.calendar", "week"),
        'spec.window.calendar: Unsupported value: "week"',
    ),
    (
        "a soft threshold past 100",
        setting("softThresholdPercent", 120),
        "spec.softThresholdPercent",
    ),
]


@pytest.fixture(scope="module")
def llmquota_crd(cluster: Cluster) -> None:
    """crds/llmquota.yaml, established (left installed: other tests of the run use it)."""
    cluster.kubectl("apply", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/llmquotas.sidelight.io")


def test_the_example_is_admitted_with_its_defaults(
    cluster: Cluster, llmquota_crd: None, namespace: str
) -> None:
    poll(
        lambda: cluster.kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input_text=manifest(namespace, valid_spec(), KIND),
        ),
        timeout=30,
        what="the valid LLMQuota to be admitted",
    )
    minimal = {"window": {"rolling": "1h"}, "limits": {"tokens": 1000}}
    cluster.kubectl("apply", "-f", "-", input_text=manifest(namespace, minimal, KIND))
    stored = cluster.kubectl("get", "llmquota", "bad", "-n", namespace, "-o", "json").stdout
    assert json.loads(stored)["spec"] == {
        "window": {"rolling": "1h"},
        "limits": {"tokens": 1000},
        "softThresholdPercent": 80,
        "hardAction": {"block": {}},
    }


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in CASES],
)
def test_invalid_quotas_are_refused_naming_the_field(
    cluster: Cluster,
    llmquota_crd: None,
    namespace: str,
    mutate: Callable[[Spec], None],
    expected: str,
) -> None:
    spec = copy.deepcopy(valid_spec())
    mutate(spec)
    result = cluster.kubectl(
        "apply", "-f", "-", input_text=manifest(namespace, spec, KIND), check=False
    )
    assert result.returncode == 1
    assert expected in result.stderr.strip()
