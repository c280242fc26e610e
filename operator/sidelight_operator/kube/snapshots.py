"""Snapshots from the index: one per pod, and one compile per namespace for status.

`snapshot_for(namespace, labels)` is `compile_snapshot(select_for_pod(...))`,
memoised by its input: the stamps of the selected objects (a stamp changes
with every change of an object, see `index.View`). Pods with the same labels
share one compile, and a change in one namespace recompiles nothing of
another. `compile_namespace` is the same for the whole namespace, which the
status writer reads acceptance and diagnostics from. Both are pure functions
of the index; the memo is bounded and thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from sidelight_operator.compile import CompileResult, compile_snapshot, select_for_pod
from sidelight_operator.kube.index import ResourceIndex, View
from sidelight_proto.v1 import snapshot_pb2

T = TypeVar("T")
MEMO_SIZE = 512


class Memo(Generic[T]):
    """A bounded, thread-safe map from input keys to results (least recent out)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self.misses = 0
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, T] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The result for `key`, computed once (compute runs outside the lock)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class PodLike(Protocol):
    """What the snapshot source needs of a pod reference."""

    @property
    def namespace(self) -> str:
        """The pod's namespace."""

    @property
    def name(self) -> str:
        """The pod's name."""

    @property
    def labels(self) -> Mapping[str, str]:
        """The pod's labels when it was authenticated."""


class SnapshotSource:
    """Compiles what the index holds, for one pod or for one namespace."""

    def __init__(self, index: ResourceIndex) -> None:
        self.index = index
        self.pod_memo: Memo[snapshot_pb2.Snapshot] = Memo()
        self.namespace_memo: Memo[CompileResult] = Memo()

    def snapshot_for(self, namespace: str, labels: Mapping[str, str]) -> snapshot_pb2.Snapshot:
        """Everything that applies to a pod of `namespace` with `labels`, compiled.

        The result is shared between callers: treat it as read-only.
        """
        view = self.index.view()
        selected = select_for_pod(view.objects, namespace, labels)
        return self.pod_memo.get(
            _input_key(view, selected), lambda: compile_snapshot(selected).snapshot
        )

    def snapshot_for_pod(self, pod: PodLike) -> snapshot_pb2.Snapshot:
        """The snapshot of `pod`, with its labels as the pod watch last saw them."""
        known = self.index.pod(pod.namespace, pod.name)
        return self.snapshot_for(pod.namespace, known.labels if known else pod.labels)

    def compile_namespace(self, namespace: str) -> CompileResult:
        """Every indexed object of `namespace`, compiled together."""
        view = self.index.view()
        selected = [o for o in view.objects if o["metadata"].get("namespace") == namespace]
        return self.namespace_memo.get(
            (namespace, _input_key(view, selected)), lambda: compile_snapshot(selected)
        )


def _input_key(view: View, selected: list[Mapping[str, Any]]) -> tuple[int, ...]:
    return tuple(view.stamp(obj) for obj in selected)
