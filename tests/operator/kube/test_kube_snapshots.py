"""SnapshotSource: per-pod selection, memoised by input, and per-namespace compiles."""

from __future__ import annotations

import base64
from typing import Any

from sidelight_operator.kube.index import PodInfo, ResourceIndex
from sidelight_operator.kube.snapshots import Memo, SnapshotSource


def route(name: str, ns: str = "shop", app: str | None = None, model: str = "gpt-4") -> Any:
    """An LLMRoute for the pods labelled app=`app` (all pods without)."""
    spec: dict[str, Any] = {
        "backends": [
            {
                "name": "b",
                "provider": "openai",
                "model": model,
                "endpoints": [{"url": "https://api.openai.com/v1"}],
                "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
            }
        ],
        "routes": [{"routeTo": "b"}],
    }
    if app is not None:
        spec["podSelector"] = {"matchLabels": {"app": app}}
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": ns, "generation": 1},
        "spec": spec,
    }


def secret(ns: str = "shop") -> Any:
    """The `openai` Secret of a namespace."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai", "namespace": ns},
        "data": {"api-key": base64.b64encode(f"sk-{ns}".encode()).decode()},
    }


class Pod:
    """A PodRef-like object, as the hub hands it."""

    def __init__(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        self.namespace = namespace
        self.name = name
        self.labels = labels


def names(snapshot: Any) -> list[str]:
    """namespace/name of each RouteSet."""
    return [f"{r.source.namespace}/{r.source.name}" for r in snapshot.route_sets]


def filled() -> SnapshotSource:
    """Two namespaces; shop has a route for everyone and one for app=web."""
    index = ResourceIndex(("LLMRoute",))
    for obj in (route("all"), route("web", app="web"), route("other", ns="bank")):
        index.put(obj)
    index.put(secret())
    index.put(secret("bank"))
    return SnapshotSource(index)


def test_each_pod_gets_what_applies_to_it_and_nothing_else() -> None:
    source = filled()
    web = source.snapshot_for("shop", {"app": "web"})
    assert names(web) == ["shop/all", "shop/web"]
    assert names(source.snapshot_for("shop", {"app": "api"})) == ["shop/all"]
    bank = source.snapshot_for("bank", {"app": "web"})
    assert names(bank) == ["bank/other"]
    assert bank.route_sets[0].backends[0].credential.value == b"sk-bank"
    assert names(source.snapshot_for("empty", {})) == []


def test_same_input_compiles_once() -> None:
    source = filled()
    first = source.snapshot_for("shop", {"app": "web"})
    again = source.snapshot_for("shop", {"app": "web", "tier": "x"})  # same selection
    assert again is first
    assert source.pod_memo.misses == 1


def test_a_change_elsewhere_recompiles_nothing_here() -> None:
    source = filled()
    shop = source.snapshot_for("shop", {})
    source.index.put(route("other", ns="bank", model="gpt-4o"))
    assert source.snapshot_for("shop", {}) is shop
    bank = source.snapshot_for("bank", {})
    assert bank.route_sets[0].backends[0].model == "gpt-4o"
    source.index.put(route("all", model="gpt-4o"))
    changed = source.snapshot_for("shop", {})
    assert changed.version != shop.version


def test_the_pod_watch_labels_win_over_the_token_time_labels() -> None:
    source = filled()
    pod = Pod("shop", "web-1", {"app": "api"})
    assert names(source.snapshot_for_pod(pod)) == ["shop/all"]
    source.index.put_pod(PodInfo("shop", "web-1", "u1", {"app": "web"}))
    assert names(source.snapshot_for_pod(pod)) == ["shop/all", "shop/web"]


def test_namespace_compile_is_memoised_and_sees_only_its_namespace() -> None:
    source = filled()
    result = source.compile_namespace("shop")
    assert set(result.accepted) == {("LLMRoute", "shop", "all"), ("LLMRoute", "shop", "web")}
    assert source.compile_namespace("shop") is result
    source.index.put(route("other", ns="bank", model="gpt-4o"))
    assert source.compile_namespace("shop") is result


def test_memo_is_bounded() -> None:
    memo: Memo[int] = Memo(size=2)
    for key in (1, 2, 3):
        assert memo.get(key, lambda: 10) == 10
    assert memo.get(1, lambda: -1) == -1  # evicted, recomputed
    assert memo.get(3, lambda: -1) == 10
    assert memo.misses == 4
