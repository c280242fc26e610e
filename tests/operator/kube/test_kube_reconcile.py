"""Reconciler: watch events into the index, and on_change only for real changes."""

from __future__ import annotations

import base64
from typing import Any

from kubernetes import client

from sidelight_operator.compile import ResourceKey
from sidelight_operator.kube.index import PodInfo, ResourceIndex
from sidelight_operator.kube.kinds import KINDS
from sidelight_operator.kube.reconcile import Reconciler, build_pod_info, is_injected


def route(generation: int = 1, secret: str = "openai") -> Any:
    """LLMRoute shop/r naming one Secret."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": "r", "namespace": "shop", "generation": generation},
        "spec": {
            "backends": [
                {
                    "name": "b",
                    "provider": "openai",
                    "model": "gpt-4",
                    "endpoints": [{"url": "https://api.openai.com/v1"}],
                    "credentials": {"secretRef": {"name": secret, "key": "api-key"}},
                }
            ],
            "routes": [{"routeTo": "b"}],
        },
    }


def secret(name: str = "openai", value: bytes = b"sk-1") -> Any:
    """A Secret of namespace shop."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop"},
        "data": {"api-key": base64.b64encode(value).decode()},
    }


def pod(labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    """Pod shop/web-1."""
    meta = {"name": "web-1", "namespace": "shop", "uid": "u1", "labels": labels}
    return {"metadata": {**meta, "annotations": annotations or {}}}


class Recording(Reconciler):
    """A Reconciler whose Secret reads come from a dict, counting on_change calls."""

    def __init__(self, stored: dict[str, Any] | None = None) -> None:
        self.changes = 0
        self.stored = stored or {}
        super().__init__(
            ResourceIndex([k.kind for k in KINDS]),
            client.ApiClient(client.Configuration()),
            KINDS,
            self.count,
        )

    def count(self) -> None:
        self.changes += 1

    def apply_fetch_secrets(self, key: ResourceKey) -> None:
        for name in self.index.missing_secrets(key):
            if name in self.stored:
                self.index.put_if_absent(self.stored[name])


def test_route_events_and_status_only_changes() -> None:
    reconciler = Recording({"openai": secret()})
    reconciler.apply_resource_event(None, route())
    assert reconciler.changes == 1
    assert reconciler.index.get(("Secret", "shop", "openai")) is not None  # read once
    with_status = {**route(), "status": {"conditions": []}}
    reconciler.apply_resource_event("MODIFIED", with_status)
    assert reconciler.changes == 1
    reconciler.apply_resource_event("MODIFIED", route(generation=2))
    assert reconciler.changes == 2
    reconciler.apply_resource_event("DELETED", route(generation=2))
    assert reconciler.changes == 3
    assert reconciler.index.all() == ()
    reconciler.apply_resource_event("DELETED", route(generation=2))
    assert reconciler.changes == 3


def test_secret_events_only_for_referenced_secrets() -> None:
    reconciler = Recording()
    assert not reconciler.wants_secret(secret())
    reconciler.apply_resource_event("ADDED", route())
    assert reconciler.wants_secret(secret())
    assert not reconciler.wants_secret(secret("other"))
    reconciler.apply_secret_event("ADDED", secret())
    assert reconciler.changes == 2
    reconciler.apply_secret_event("MODIFIED", secret())
    assert reconciler.changes == 2
    reconciler.apply_secret_event("MODIFIED", secret(value=b"sk-2"))
    reconciler.apply_secret_event("DELETED", secret(value=b"sk-2"))
    assert reconciler.changes == 4


def test_pod_events_keep_labels_of_known_and_injected_pods() -> None:
    reconciler = Recording()
    assert not reconciler.wants_pod(pod({"app": "web"}))
    assert reconciler.wants_pod(pod({"sidelight.io/injected": "true"}))
    assert reconciler.wants_pod(pod({}, {"sidelight.io/injected": "true"}))
    reconciler.index.put_pod(PodInfo("shop", "web-1", "u1", {"app": "web"}))  # it connected
    assert reconciler.wants_pod(pod({"app": "web"}))
    reconciler.apply_pod_event("MODIFIED", pod({"app": "web"}))
    assert reconciler.changes == 0
    reconciler.apply_pod_event("MODIFIED", pod({"app": "api"}))
    assert reconciler.index.pod("shop", "web-1") == PodInfo("shop", "web-1", "u1", {"app": "api"})
    reconciler.apply_pod_event("DELETED", pod({"app": "api"}))
    assert reconciler.index.pod("shop", "web-1") is None
    assert reconciler.changes == 2


def test_pod_helpers() -> None:
    assert build_pod_info(pod({"a": "b"})) == PodInfo("shop", "web-1", "u1", {"a": "b"})
    assert not is_injected({"metadata": {}})
