"""Fixtures of the e2e tier: one control plane per run, clients, a fake kubelet.

`cluster` starts the local control plane (or kind, see sidelight_e2e.session)
once per session; a failed test's report shows the tails of the components'
logs and of the fake kubelet's containers.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_e2e.binaries import MissingBinaryError
from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.objects import to_model
from sidelight_e2e.processes import poll
from sidelight_e2e.session import start_cluster


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The control plane for the whole run (built on first use: e2e/build-binaries)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    missing: MissingBinaryError | None = None
    try:
        # Not captured, so a first run shows the build's progress.
        with capture.global_and_fixture_disabled():
            handle, stop = start_cluster()
    except MissingBinaryError as error:
        missing = error
    if missing is not None:
        pytest.fail(str(missing), pytrace=False)
    try:
        yield handle
    finally:
        stop()


@pytest.fixture(scope="session")
def kube_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient acting as the cluster admin."""
    with cluster.api_client() as api:
        yield api


@pytest.fixture
def namespace(kube_client: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (with its default ServiceAccount), deleted afterwards."""
    core = client.CoreV1Api(kube_client)
    base = request.node.name.lower().replace("_", "-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    manifest = {"metadata": {"name": name, "labels": {"sidelight.e2e/test": "true"}}}
    core.create_namespace(to_model(kube_client, client.V1Namespace, manifest))

    def has_default_account() -> bool | None:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return True

    poll(has_default_account, timeout=30, what=f"ServiceAccount {name}/default")
    yield name
    core.delete_namespace(name)


@pytest.fixture
def fake_kubelet(cluster: Cluster, kube_client: client.ApiClient) -> Iterator[FakeKubelet]:
    """Plays the kubelet for the containers a test runs; stops them afterwards."""
    kubelet = FakeKubelet(kube_client, api_url=cluster.api_url)
    yield kubelet
    kubelet.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure, attach the tails of the component and container logs."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        cluster = funcargs.get("cluster")
        if isinstance(cluster, Cluster) and cluster.logs:
            report.sections.append(("sidelight e2e: control plane logs", cluster.log_tails()))
        kubelet = funcargs.get("fake_kubelet")
        if isinstance(kubelet, FakeKubelet) and kubelet.containers:
            report.sections.append(("sidelight e2e: fake kubelet containers", kubelet.log_tails()))
    return report
