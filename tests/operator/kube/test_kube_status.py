"""StatusWriter: patches only what changed, Events on new rejections, hub states in."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_operator.compile import ResourceKey
from sidelight_operator.controlplane import Nack, PodRef, SidecarState
from sidelight_operator.kube.index import PodInfo, ResourceIndex
from sidelight_operator.kube.kinds import KINDS
from sidelight_operator.kube.snapshots import SnapshotSource
from sidelight_operator.kube.status import StatusWriter, build_sidecar_views

KEY = ("LLMRoute", "shop", "r")


def route(key: str = "api-key", generation: int = 1) -> Any:
    """LLMRoute shop/r reading `key` of Secret openai."""
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
                    "credentials": {"secretRef": {"name": "openai", "key": key}},
                }
            ],
            "routes": [{"routeTo": "b"}],
        },
    }


SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "openai", "namespace": "shop"},
    "data": {"api-key": base64.b64encode(b"sk-1").decode()},
}
POD = PodRef("shop", "web-1", "u1", "default", {"app": "web"})


class Recording(StatusWriter):
    """A StatusWriter that records its writes instead of calling the API."""

    def __init__(self, source: SnapshotSource, states: list[SidecarState]) -> None:
        super().__init__(
            source,
            lambda: states,
            client.ApiClient(client.Configuration()),
            KINDS,
            clock=lambda: "2026-01-01T00:00:00Z",
        )
        self.patches: list[tuple[ResourceKey, dict[str, Any]]] = []
        self.events: list[tuple[ResourceKey, str, str]] = []

    def apply_status(self, key: ResourceKey, status: Mapping[str, Any]) -> None:
        self.patches.append((key, dict(status)))

    def apply_event(self, key: ResourceKey, reason: str, message: str) -> None:
        self.events.append((key, reason, message))


def state(source: SnapshotSource, acked: bool, nack: Nack | None = None) -> SidecarState:
    """The hub's state of POD's sidecar, having acked its desired snapshot or nothing."""
    desired = source.snapshot_for_pod(POD)
    return SidecarState(
        pod=POD,
        build="sidelight/test",
        connected=True,
        sent_version=desired.version,
        acked_version=desired.version if acked else None,
        acked_snapshot=desired if acked else None,
        nack=nack,
        serving_version=None,
    )


def conditions(status: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """type -> (status, reason)."""
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


async def test_writes_once_per_change_and_programmed_follows_acks() -> None:
    index = ResourceIndex(["LLMRoute"])
    index.put(route())
    index.put(SECRET)
    source = SnapshotSource(index)
    states = [state(source, acked=False)]
    writer = Recording(source, states)
    assert await writer.write_once()
    [(key, status)] = writer.patches
    assert key == KEY
    assert conditions(status) == {
        "Accepted": ("True", "Accepted"),
        "Programmed": ("False", "Pending"),
    }
    assert await writer.write_once()
    assert len(writer.patches) == 1  # nothing changed, nothing written
    index.put({**route(), "status": status})  # the watch echoes the write
    assert await writer.write_once()
    assert len(writer.patches) == 1
    states[0] = state(source, acked=True)
    assert await writer.write_once()
    assert conditions(writer.patches[-1][1])["Programmed"] == ("True", "Programmed")
    assert writer.patches[-1][1]["sidecars"] == {"synced": 1, "stale": 0, "rejecting": 0}
    assert writer.events == []


async def test_a_recreated_resource_gets_its_status_again() -> None:
    index = ResourceIndex(["LLMRoute"])
    index.put({**route(), "metadata": {**route()["metadata"], "uid": "u1"}})
    index.put(SECRET)
    writer = Recording(SnapshotSource(index), [])
    assert await writer.write_once()
    index.remove(KEY)
    index.put({**route(), "metadata": {**route()["metadata"], "uid": "u2"}})
    index.put(SECRET)
    assert await writer.write_once()
    assert [key for key, _ in writer.patches] == [KEY, KEY]


async def test_a_compile_error_is_reported_once_with_an_event() -> None:
    index = ResourceIndex(["LLMRoute"])
    index.put(route(key="missing"))
    index.put(SECRET)
    source = SnapshotSource(index)
    writer = Recording(source, [])
    assert await writer.write_once()
    assert await writer.write_once()
    [(_, status)] = writer.patches
    assert conditions(status)["Accepted"] == ("False", "Invalid")
    assert conditions(status)["Programmed"] == ("False", "Invalid")
    message = status["conditions"][0]["message"]
    assert message.startswith("spec.backends[0].credentials")
    assert "has no key 'missing'" in message
    assert writer.events == [(KEY, "Invalid", message)]


async def test_a_nack_makes_the_route_rejected() -> None:
    index = ResourceIndex(["LLMRoute"])
    index.put(route())
    index.put(SECRET)
    source = SnapshotSource(index)
    desired = source.snapshot_for_pod(POD)
    writer = Recording(source, [state(source, False, Nack(desired.version, "no regex engine"))])
    assert await writer.write_once()
    status = writer.patches[-1][1]
    assert conditions(status)["Programmed"] == ("False", "Rejected")
    assert status["conditions"][1]["message"] == (
        "1 of 1 sidecars rejected it: shop/web-1: no regex engine"
    )


def test_views_use_watched_labels_and_skip_disconnected_sidecars() -> None:
    index = ResourceIndex(["LLMRoute"])
    source = SnapshotSource(index)
    connected = state(source, acked=False)
    gone = SidecarState(
        pod=PodRef("shop", "old", "u0", "default"),
        build="",
        connected=False,
        sent_version=None,
        acked_version=None,
        acked_snapshot=None,
        nack=None,
        serving_version=None,
    )
    index.put_pod(PodInfo("shop", "web-1", "u1", {"app": "api"}))
    [view] = build_sidecar_views([connected, gone], source)
    assert (view.pod, dict(view.labels)) == ("web-1", {"app": "api"})


class Failing(Recording):
    """A StatusWriter whose status writes fail with `error`."""

    def __init__(self, source: SnapshotSource, error: Exception) -> None:
        super().__init__(source, [])
        self.error = error

    def apply_status(self, key: ResourceKey, status: Mapping[str, Any]) -> None:
        raise self.error


async def test_failed_writes_are_retried_and_vanished_objects_are_not() -> None:
    index = ResourceIndex(["LLMRoute"])
    index.put(route())
    index.put(SECRET)
    source = SnapshotSource(index)
    assert not await Failing(source, ApiException(status=500, reason="boom")).write_once()
    assert not await Failing(
        source, urllib3.exceptions.ProtocolError("connection reset")
    ).write_once()
    assert await Failing(source, ApiException(status=404, reason="gone")).write_once()
