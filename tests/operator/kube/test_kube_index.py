"""ResourceIndex: what counts as a change, which Secrets it keeps, pods, threads."""

from __future__ import annotations

import base64
import threading
from typing import Any

import pytest

from sidelight_operator.kube.index import PodInfo, ResourceIndex, build_projection

KINDS = ("LLMRoute",)


def route(name: str = "r", ns: str = "shop", secret: str = "openai", **meta: Any) -> Any:
    """An LLMRoute naming one Secret, with extra metadata fields."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": ns, "generation": 1, **meta},
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


def secret(name: str = "openai", ns: str = "shop", value: str = "sk-1") -> Any:
    """A Secret as the API returns it (base64 data)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
        "type": "Opaque",
        "data": {"api-key": base64.b64encode(value.encode()).decode()},
    }


def test_status_and_bookkeeping_are_not_changes() -> None:
    index = ResourceIndex(KINDS)
    assert index.put(route(resourceVersion="1"))
    noisy = route(resourceVersion="2", managedFields=[{"manager": "kubectl"}])
    noisy["status"] = {"observedGeneration": 1, "conditions": []}
    assert not index.put(noisy)
    assert index.status_of(("LLMRoute", "shop", "r")) == noisy["status"]
    assert index.put(route(generation=2))


def test_projection_is_a_detached_copy() -> None:
    original = route()
    projection = build_projection(original)
    original["spec"]["routes"][0]["routeTo"] = "other"
    assert projection["spec"]["routes"][0]["routeTo"] == "b"


def test_secrets_are_kept_only_while_referenced() -> None:
    index = ResourceIndex(KINDS)
    assert not index.put(secret())  # nothing references it yet
    assert index.get(("Secret", "shop", "openai")) is None
    index.put(route())
    assert index.missing_secrets(("LLMRoute", "shop", "r")) == ["openai"]
    assert index.wants_secret("shop", "openai")
    assert not index.wants_secret("other", "openai")
    assert index.put(secret())
    assert not index.put(secret())
    assert index.put(secret(value="sk-2"))
    assert index.missing_secrets(("LLMRoute", "shop", "r")) == []
    assert index.put(route(generation=2))  # still references it
    assert index.get(("Secret", "shop", "openai")) is not None
    index.put(route(secret="anthropic"))  # no longer references openai
    assert index.get(("Secret", "shop", "openai")) is None
    assert not index.wants_secret("shop", "openai")


def test_a_secret_referenced_twice_stays_until_both_let_go() -> None:
    index = ResourceIndex(KINDS)
    index.put(route("a"))
    index.put(route("b"))
    index.put(secret())
    assert index.remove(("LLMRoute", "shop", "a"))
    assert index.get(("Secret", "shop", "openai")) is not None
    assert index.remove(("LLMRoute", "shop", "b"))
    assert index.get(("Secret", "shop", "openai")) is None
    assert not index.remove(("LLMRoute", "shop", "b"))
    assert index.all() == ()


def test_a_read_never_overwrites_a_watched_secret() -> None:
    index = ResourceIndex(KINDS)
    index.put(route())
    assert index.put(secret(value="new"))
    assert not index.put_if_absent(secret(value="old"))
    stored = index.get(("Secret", "shop", "openai"))
    assert stored is not None
    assert stored["data"]["api-key"] == base64.b64encode(b"new").decode()


def test_views_are_cached_and_stamps_change_with_content() -> None:
    index = ResourceIndex(KINDS)
    index.put(route("a"))
    index.put(route("b"))
    first = index.view()
    assert index.view() is first
    assert [o["metadata"]["name"] for o in first.objects] == ["a", "b"]
    index.put(route("a", generation=2))
    second = index.view()
    assert second.stamp(second.objects[0]) != first.stamp(first.objects[0])
    assert second.stamp(second.objects[1]) == first.stamp(first.objects[1])


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="Guardrail"):
        ResourceIndex(KINDS).put({"kind": "Guardrail", "metadata": {"name": "g"}})


def test_pods() -> None:
    index = ResourceIndex(KINDS)
    pod = PodInfo("shop", "web-1", "u1", {"app": "web"})
    assert index.put_pod(pod)
    assert not index.put_pod(PodInfo("shop", "web-1", "u1", {"app": "web"}))
    assert index.put_pod(PodInfo("shop", "web-1", "u1", {"app": "api"}))
    assert index.pod("shop", "web-1") == PodInfo("shop", "web-1", "u1", {"app": "api"})
    assert index.remove_pod("shop", "web-1")
    assert not index.remove_pod("shop", "web-1")
    assert index.pod("shop", "web-1") is None


def test_concurrent_writers_and_readers() -> None:
    index = ResourceIndex(KINDS)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(200):
                index.put(route(f"r{worker}-{i % 10}", generation=i))
                index.put(secret())
                view = index.view()
                for obj in view.objects:
                    view.stamp(obj)
        except BaseException as error:  # collected and re-raised by the assert below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index.resources()) == 40
    assert index.get(("Secret", "shop", "openai")) is not None
