"""Sidecar injection on the local control plane, through the chart as a user installs it.

The chart is installed with helm and its operator Pod runs on the rig
(test_injection_rig.py says how and what the rig overrides). Deployments
are created with kubectl; the Pods that kube-controller-manager makes are
checked on the API object. Also: the rendered chart passes a server-side
dry-run (the API server's own schemas, strict field validation), and the
admission latency the webhook adds is measured.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from test_injection_rig import (
    CHART,
    INJECT,
    SidelightInstall,
    apply,
    containers,
    deployment,
    env_of,
    install_sidelight,
    pod_of,
)

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.objects import to_dict, to_model
from sidelight_e2e.processes import poll

INJECTED = "sidelight.io/injected"


@pytest.fixture(scope="module")
def sidelight(
    cluster: Cluster, kube_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidelightInstall]:
    """The chart, installed, with its operator running on loopback."""
    if cluster.kind == "kind":
        pytest.skip("a kind API server cannot call a webhook on the test's 127.0.0.1")
    with install_sidelight(cluster, kube_client, tmp_path_factory.mktemp("sidelight")) as install:
        yield install


def create_pod(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    """Create a bare pod; the pod as admitted."""
    manifest = {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
    }
    created = client.CoreV1Api(api).create_namespaced_pod(
        namespace, to_model(api, client.V1Pod, manifest)
    )
    return to_dict(api, created)


def injected(pod: dict[str, Any]) -> bool:
    """Whether the pod carries the marker and the sidecar."""
    marked = INJECTED in (pod["metadata"].get("annotations") or {})
    return marked and "sidelight" in containers(pod)


@pytest.mark.parametrize("options", [[], ["--set", "webhook.failurePolicy=Fail"]])
def test_the_rendered_chart_passes_a_server_side_dry_run(
    cluster: Cluster, namespace: str, options: list[str]
) -> None:
    """Every object of `helm template` (CRDs included) is valid for the API server."""
    rendered = cluster.helm(
        "template", "dryrun", str(CHART), "-n", namespace, "--include-crds", *options
    ).stdout
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input_text=rendered)
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/dryrun-operator" in (
        result.stdout
    )


@pytest.mark.parametrize("label", [False, True], ids=["annotation", "label"])
def test_a_deployment_in_an_opted_in_namespace_gets_the_sidecar(
    sidelight: SidelightInstall, label: bool
) -> None:
    """The controller-manager's Pod has the native sidecar, the SDK variables, the identity."""
    namespace = sidelight.create_namespace(opt_in="enabled", label=label)
    labels = {"app": "web", "sidelight.io/team": "payments"}
    apply(sidelight.cluster, namespace, deployment("web", labels, ["python", "-c", "pass"]))
    pod = pod_of(sidelight.api, namespace, "app=web")

    assert injected(pod)
    sidecar, app = pod["spec"]["initContainers"][0], containers(pod)["app"]
    assert sidecar["name"] == "sidelight"
    assert sidecar["restartPolicy"] == "Always"
    assert sidecar["startupProbe"]["exec"]["command"][0] == "python"
    port = sidelight.sidecar_port
    assert env_of(app)["OPENAI_BASE_URL"] == f"http://127.0.0.1:{port}/v1"
    assert env_of(app)["ANTHROPIC_BASE_URL"] == f"http://127.0.0.1:{port}"
    assert env_of(app)["OPENAI_API_KEY"] == "sidelight-placeholder"
    identity = env_of(sidecar)
    assert identity["SIDELIGHT_WORKLOAD"] == "web"
    assert identity["SIDELIGHT_TEAM"] == {
        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['sidelight.io/team']"}
    }
    assert pod["metadata"]["annotations"]["sidelight.io/control-plane-ca"] == sidelight.ca_pem
    assert f"--control-plane=127.0.0.1:{sidelight.grpc_port}" in sidecar["args"]
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "sidelight-identity")
    token = volume["projected"]["sources"][0]["serviceAccountToken"]
    assert token == {"audience": "sidelight", "expirationSeconds": 3600, "path": "token"}
    assert not [m for m in app.get("volumeMounts", []) if m["name"].startswith("sidelight")]


def test_a_pod_created_right_after_the_namespace_is_injected(sidelight: SidelightInstall) -> None:
    """No waiting: a namespace the watch has not shown yet is read with a GET."""
    namespace = sidelight.create_namespace(opt_in="enabled")
    assert injected(create_pod(sidelight.api, namespace, "first"))


def test_a_namespace_without_the_annotation_gets_no_sidecar(sidelight: SidelightInstall) -> None:
    """Neither a Deployment's pod nor a bare pod; the pods are left exactly as they were."""
    namespace = sidelight.create_namespace(opt_in=None)
    apply(sidelight.cluster, namespace, deployment("web", {"app": "web"}, ["python"]))
    pod = pod_of(sidelight.api, namespace, "app=web")
    assert not injected(pod)
    assert list(containers(pod)) == ["app"]
    assert "env" not in containers(pod)["app"]
    assert not injected(create_pod(sidelight.api, namespace, "bare"))


def test_annotating_a_namespace_later_opts_it_in(sidelight: SidelightInstall) -> None:
    """The namespace watch brings the new annotation to the webhook."""
    namespace = sidelight.create_namespace(opt_in=None)
    assert not injected(create_pod(sidelight.api, namespace, "before"))
    sidelight.cluster.kubectl("annotate", "namespace", namespace, f"{INJECT}=enabled")
    attempts = iter(range(1000))

    def next_pod_injected() -> bool | None:
        return (
            True
            if injected(create_pod(sidelight.api, namespace, f"after-{next(attempts)}"))
            else None
        )

    poll(next_pod_injected, timeout=10, interval=0.05, what="a pod injected after annotating")


def _create_timed(api: client.ApiClient, namespace: str, count: int) -> list[float]:
    times = []
    for index in range(count):
        started = time.perf_counter()
        create_pod(api, namespace, f"p{index}")
        times.append(time.perf_counter() - started)
    return times


def _percentiles(times: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def test_admission_latency(sidelight: SidelightInstall) -> None:
    """Pod creation times over 100 pods: injected, reviewed only, and not sent."""
    namespaces = {
        "injected": sidelight.create_namespace(opt_in="enabled"),
        "reviewed, not injected": sidelight.create_namespace(opt_in=None),
        "not sent (label disabled)": sidelight.create_namespace(opt_in="disabled", label=True),
    }
    for namespace in namespaces.values():  # warm connections and the namespace index
        _create_timed(sidelight.api, namespace, 1)
        client.CoreV1Api(sidelight.api).delete_collection_namespaced_pod(namespace)
    results = {
        what: _percentiles(_create_timed(sidelight.api, ns, 100)) for what, ns in namespaces.items()
    }
    lines = [
        f"{what:>26}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms" for what, (p50, p99) in results.items()
    ]
    print("pod admission over 100 pods each (create call, client side):\n" + "\n".join(lines))
    pods = client.CoreV1Api(sidelight.api).list_namespaced_pod(namespaces["injected"]).items
    assert len(pods) == 100
    assert all(injected(to_dict(sidelight.api, p)) for p in pods)
    assert results["injected"][1] < 1000


def test_with_the_operator_down_pods_are_admitted_without_a_sidecar(
    sidelight: SidelightInstall,
) -> None:
    """failurePolicy Ignore: the webhook's absence never blocks pod creation."""
    assert sidelight.operator is not None
    namespace = sidelight.create_namespace(opt_in="enabled")
    sidelight.operator.process.stop()
    try:
        assert not injected(create_pod(sidelight.api, namespace, "unproxied"))
    finally:
        sidelight.operator.process.start()
        sidelight.wait_ready()
