"""What the operator knows of the cluster: resources, Secrets and sidecar pods.

`ResourceIndex` is fed by the kopf handlers and read by the gRPC hub's
threads, so every method takes one lock; it does no I/O. It keeps only what
the compile step reads (a projection of each object), so that a change of
`status`, `resourceVersion` or `managedFields` alone is not a change: the
operator's own status writes never wake the compile step again.

Each stored object gets a stamp from a counter that only grows: a `View`
pairs a consistent copy of the objects with their stamps, which is what the
snapshot memo keys on. Secrets are kept only while an indexed resource of
their namespace references them (`wants_secret`), so the operator holds the
keys it needs and not every Secret of the cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sidelight_operator.compile import ResourceKey, referenced_secrets

SECRET = "Secret"


@dataclass(frozen=True)
class PodInfo:
    """A pod that runs (or may run) a sidecar: what selection needs of it."""

    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class View:
    """A consistent copy of the indexed objects and their stamps."""

    objects: tuple[Mapping[str, Any], ...]
    _stamps: Mapping[int, int] = field(repr=False)

    def stamp(self, obj: Mapping[str, Any]) -> int:
        """The stamp of `obj`, one of `objects` (a new stamp for every change)."""
        return self._stamps[id(obj)]


def key_of(obj: Mapping[str, Any]) -> ResourceKey:
    """(kind, namespace, name) of an API object."""
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", "")))


def build_projection(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `obj` that the compile step reads; status and bookkeeping dropped."""
    meta = obj.get("metadata") or {}
    if obj.get("kind") == SECRET:
        return {
            "apiVersion": obj.get("apiVersion"),
            "kind": SECRET,
            "metadata": {"namespace": meta.get("namespace"), "name": meta.get("name")},
            "type": obj.get("type"),
            "data": _plain(obj.get("data") or {}),
        }
    kept = ("namespace", "name", "uid", "generation")
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": {k: meta[k] for k in kept if k in meta},
        "spec": _plain(obj.get("spec")),
    }


class ResourceIndex:
    """Thread-safe in-memory index of resources, referenced Secrets and pods."""

    def __init__(self, kinds: Sequence[str]) -> None:
        self.kinds = tuple(kinds)
        self._lock = threading.Lock()
        self._objects: dict[ResourceKey, tuple[Mapping[str, Any], int]] = {}
        self._statuses: dict[ResourceKey, Mapping[str, Any]] = {}
        self._references: dict[tuple[str, str], set[ResourceKey]] = {}
        self._pods: dict[tuple[str, str], PodInfo] = {}
        self._counter = 0
        self._view: View | None = None

    def put(self, obj: Mapping[str, Any]) -> bool:
        """Store a resource or Secret; True when what compile reads changed.

        A Secret that no indexed resource references is not kept (and one
        that was kept is dropped). A resource's status is kept apart, for
        the status writer, and never counts as a change.
        """
        return self._store(obj, replace=True)

    def put_if_absent(self, obj: Mapping[str, Any]) -> bool:
        """Store a Secret read by a GET unless a watch event already stored one."""
        return self._store(obj, replace=False)

    def _store(self, obj: Mapping[str, Any], *, replace: bool) -> bool:
        key = key_of(obj)
        if key[0] != SECRET and key[0] not in self.kinds:
            raise ValueError(f"kind {key[0]!r} is not indexed")
        projection = build_projection(obj)
        with self._lock:
            if not replace and key in self._objects:
                return False
            if key[0] == SECRET and not self._references.get(key[1:]):
                return self._drop(key)
            if key[0] != SECRET:
                self._statuses[key] = _plain(obj.get("status") or {})
            current = self._objects.get(key)
            if current is not None and current[0] == projection:
                return False
            if key[0] != SECRET:
                self._reference(key, referenced_secrets(projection))
            self._counter += 1
            self._objects[key] = (projection, self._counter)
            self._view = None
            return True

    def remove(self, key: ResourceKey) -> bool:
        """Forget a resource or Secret; True if it was known."""
        with self._lock:
            self._statuses.pop(key, None)
            return self._drop(key)

    def get(self, key: ResourceKey) -> Mapping[str, Any] | None:
        """The projection of one object, if indexed."""
        with self._lock:
            found = self._objects.get(key)
            return found[0] if found else None

    def status_of(self, key: ResourceKey) -> Mapping[str, Any]:
        """The status the resource had when last seen ({} if none)."""
        with self._lock:
            return self._statuses.get(key, {})

    def view(self) -> View:
        """Every indexed object (by kind, namespace, name) with its stamp."""
        with self._lock:
            if self._view is None:
                ordered = sorted(self._objects.items(), key=lambda item: item[0])
                objects = tuple(obj for _, (obj, _) in ordered)
                stamps = {id(obj): stamp for _, (obj, stamp) in ordered}
                self._view = View(objects, MappingProxyType(stamps))
            return self._view

    def all(self) -> tuple[Mapping[str, Any], ...]:
        """Every indexed object, as the compile step takes them."""
        return self.view().objects

    def resources(self) -> list[tuple[ResourceKey, Mapping[str, Any]]]:
        """The indexed resources (not Secrets), by key."""
        with self._lock:
            return sorted((k, v[0]) for k, v in self._objects.items() if k[0] != SECRET)

    def wants_secret(self, namespace: str, name: str) -> bool:
        """Whether an indexed resource of `namespace` references Secret `name`."""
        with self._lock:
            return bool(self._references.get((namespace, name)))

    def missing_secrets(self, key: ResourceKey) -> list[str]:
        """Secrets that the indexed resource `key` references and that are not indexed."""
        with self._lock:
            found = self._objects.get(key)
            names = referenced_secrets(found[0]) if found else set()
            return sorted(n for n in names if (SECRET, key[1], n) not in self._objects)

    def put_pod(self, pod: PodInfo) -> bool:
        """Store a pod's labels; True when they changed (or the pod is new)."""
        with self._lock:
            if self._pods.get((pod.namespace, pod.name)) == pod:
                return False
            self._pods[(pod.namespace, pod.name)] = pod
            return True

    def remove_pod(self, namespace: str, name: str) -> bool:
        """Forget a pod; True if it was known."""
        with self._lock:
            return self._pods.pop((namespace, name), None) is not None

    def pod(self, namespace: str, name: str) -> PodInfo | None:
        """A known pod."""
        with self._lock:
            return self._pods.get((namespace, name))

    def _drop(self, key: ResourceKey) -> bool:
        if key not in self._objects:
            return False
        if key[0] != SECRET:
            self._reference(key, set())
        del self._objects[key]
        self._view = None
        return True

    def _reference(self, key: ResourceKey, names: set[str]) -> None:
        """Make `key` reference exactly `names`; drop the Secrets nothing references now."""
        current = self._objects.get(key)
        for name in names:
            self._references.setdefault((key[1], name), set()).add(key)
        for name in referenced_secrets(current[0]) - names if current else set():
            holders = self._references.get((key[1], name), set())
            holders.discard(key)
            if not holders:
                self._references.pop((key[1], name), None)
                if self._objects.pop((SECRET, key[1], name), None) is not None:
                    self._view = None


def _plain(value: object) -> Any:
    """A deep copy made of dicts and lists (kopf hands out read-only views)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
