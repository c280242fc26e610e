"""The webhook handler: AdmissionReview v1 over HTTP, lookups, and its failure policy."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from sidelight_operator.inject import InjectionConfig
from sidelight_operator.inject import webhook as webhook_module
from sidelight_operator.inject.env import EnvSourceRef
from sidelight_operator.inject.namespaces import NamespaceIndex
from sidelight_operator.inject.webhook import PodInjector, build_webhook_app

CONFIG = InjectionConfig(image="sidecar:1", control_plane="cp:8443")
OPTED_IN = {"metadata": {"name": "shop", "annotations": {"sidelight.io/inject": "enabled"}}}


class Reads:
    """Fake API reads: namespaces and envFrom source keys, counting calls."""

    def __init__(self, namespaces: dict[str, Any] | None = None) -> None:
        self.namespaces = namespaces if namespaces is not None else {"shop": OPTED_IN}
        self.namespace_reads: list[str] = []
        self.error: Exception | None = None
        self.delay = 0.0
        self.keys: dict[EnvSourceRef, frozenset[str] | None] = {}

    async def namespace(self, name: str) -> dict[str, Any] | None:
        self.namespace_reads.append(name)
        await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        found: dict[str, Any] | None = self.namespaces.get(name)
        return found

    async def env_keys(self, namespace: str, ref: EnvSourceRef) -> frozenset[str] | None:
        if ref not in self.keys:
            raise PermissionError("forbidden")
        return self.keys[ref]


def request(namespace: str = "shop", **pod_spec: Any) -> dict[str, Any]:
    """An AdmissionRequest for a pod create."""
    spec = {"containers": [{"name": "app", "image": "app:1"}], **pod_spec}
    return {
        "uid": "4d1c",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": namespace,
        "object": {"metadata": {"generateName": "web-"}, "spec": spec},
    }


def injector(reads: Reads, config: InjectionConfig = CONFIG) -> PodInjector:
    return PodInjector(config, NamespaceIndex(), reads.namespace, reads.env_keys)


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    patch: list[dict[str, Any]] = json.loads(base64.b64decode(response["patch"]))
    return patch


@pytest.fixture
async def http() -> AsyncIterator[TestClient[Any, Any]]:
    app = build_webhook_app(injector(Reads()))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_an_admission_review_in_gives_one_out(http: TestClient[Any, Any]) -> None:
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request()}
    answer = await http.post("/mutate-pods", json=review)
    assert answer.status == 200
    body = await answer.json()
    assert body["apiVersion"] == "admission.k8s.io/v1"
    assert body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == "4d1c"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    paths = [op["path"] for op in patch_of(response)]
    assert "/spec/initContainers" in paths
    assert "/metadata/annotations" in paths


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"apiVersion": "admission.k8s.io/v1"}', b'{"request": {"uid": "x"}}'],
    ids=["not-json", "no-request", "no-version"],
)
async def test_what_is_not_an_admission_review_is_refused(
    http: TestClient[Any, Any], body: bytes
) -> None:
    answer = await http.post("/mutate-pods", data=body)
    assert answer.status == 400


async def test_only_pod_creations_are_considered() -> None:
    reads = Reads()
    update = {**request(), "operation": "UPDATE"}
    assert await injector(reads).review(update) == {"allowed": True}
    other = {**request(), "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}
    assert await injector(reads).review(other) == {"allowed": True}
    assert reads.namespace_reads == []


async def test_a_namespace_missing_from_the_index_is_read_once() -> None:
    reads = Reads()
    pods = injector(reads)
    for _ in range(3):
        assert "patch" in await pods.review(request())
    assert reads.namespace_reads == ["shop"]
    assert pods.namespaces.get("shop") == OPTED_IN


async def test_a_namespace_that_does_not_opt_in_gets_nothing() -> None:
    reads = Reads({"plain": {"metadata": {"name": "plain"}}})
    assert await injector(reads).review(request("plain")) == {"allowed": True}
    assert await injector(Reads({})).review(request("gone")) == {"allowed": True}


@pytest.mark.parametrize("fail_closed", [False, True], ids=["Ignore", "Fail"])
async def test_an_error_follows_the_failure_policy(fail_closed: bool) -> None:
    reads = Reads()
    reads.error = ConnectionRefusedError("the API server is away")
    config = InjectionConfig(image="sidecar:1", control_plane="cp:8443", fail_closed=fail_closed)
    response = await injector(reads, config).review(request())
    message = (
        "sidelight: pod shop/web-* not injected: ConnectionRefusedError: the API server is away"
    )
    if fail_closed:
        assert response == {"allowed": False, "status": {"code": 500, "message": message}}
    else:
        assert response == {"allowed": True, "warnings": [message]}


async def test_slow_reads_end_within_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_module, "LOOKUP_TIMEOUT_S", 0.05)
    reads = Reads()
    reads.delay = 5.0
    response = await asyncio.wait_for(injector(reads).review(request()), timeout=2)
    assert response["allowed"] is True
    assert "TimeoutError" in response["warnings"][0]


async def test_envfrom_sources_are_read_and_unreadable_ones_left_alone() -> None:
    reads = Reads()
    reads.keys = {("configmap", "app"): frozenset({"OPENAI_API_KEY"})}
    envfrom = [{"configMapRef": {"name": "app"}}, {"secretRef": {"name": "locked"}}]
    containers = [{"name": "app", "image": "app:1", "envFrom": envfrom}]
    response = await injector(reads).review(request(containers=containers))
    warnings = response["warnings"]
    assert len(warnings) == 2
    assert all("secret locked (not readable)" in w for w in warnings)
    added = [op for op in patch_of(response) if op["path"] == "/spec/containers/0/env"]
    assert added == []  # nothing: every name may come from the unreadable Secret
