"""Writes `status` on every indexed resource, and Events when one is rejected.

`StatusWriter.trigger()` may be called from any thread (index changes, hub
listeners); the writer waits `debounce_s` after the first trigger so that a
burst of ACKs makes one pass, then builds every resource's status (pure:
`conditions.build_status`) and patches only those that differ from what the
resource holds or what was last written. Its own writes change nothing the
index compares (`index.build_projection` drops status), so they never wake
the compile step or the writer again.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_operator.compile import ResourceKey
from sidelight_operator.controlplane import SidecarState
from sidelight_operator.kube.conditions import (
    Condition,
    SidecarView,
    build_rejection_event,
    build_sidecar_counts,
    build_status,
)
from sidelight_operator.kube.kinds import CrdKind
from sidelight_operator.kube.snapshots import SnapshotSource
from sidelight_proto.v1 import snapshot_pb2

log = logging.getLogger(__name__)

ExtraStatus = Callable[
    [ResourceKey, snapshot_pb2.Snapshot], tuple[Mapping[str, Any], Sequence[Condition]] | None
]
"""A kind's own status fields and conditions, from its key and its namespace's snapshot."""

COMPONENT = "sidelight-operator"
# What a write may fail with: an answer from the API server, or no answer at all.
API_ERRORS = (ApiException, urllib3.exceptions.HTTPError)
RETRY_S = 5.0
API_TIMEOUT_S = 10.0


def rfc3339_now() -> str:
    """The current time as Kubernetes writes it (seconds, UTC, Z)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_sidecar_views(
    states: Iterable[SidecarState], source: SnapshotSource
) -> list[SidecarView]:
    """The connected sidecars, with the snapshot each should serve now."""
    views = []
    for state in states:
        if not state.connected:
            continue
        known = source.index.pod(state.pod.namespace, state.pod.name)
        views.append(
            SidecarView(
                namespace=state.pod.namespace,
                pod=state.pod.name,
                labels=known.labels if known else state.pod.labels,
                desired=source.snapshot_for_pod(state.pod),
                acked=state.acked_snapshot,
                rejected_version=state.nack.version if state.nack else "",
                rejected_reason=state.nack.reason if state.nack else "",
            )
        )
    return views


def build_statuses(
    source: SnapshotSource,
    views: Sequence[SidecarView],
    now: str,
    previous: Callable[[ResourceKey, Mapping[str, Any]], Mapping[str, Any]],
    extra: ExtraStatus | None = None,
) -> dict[ResourceKey, tuple[Mapping[str, Any], dict[str, Any]]]:
    """Every indexed resource's (previous status, new status)."""
    result = {}
    for key, resource in source.index.resources():
        compiled = source.compile_namespace(key[1])
        accepted = compiled.accepted.get(key, False)
        diagnostics = [d for d in compiled.diagnostics if (d.kind, d.namespace, d.name) == key]
        counts = build_sidecar_counts(resource, views)
        before = previous(key, resource)
        more = extra(key, compiled.snapshot) if extra is not None else None
        result[key] = (
            before,
            build_status(resource, diagnostics, accepted, counts, before, now, more or ({}, ())),
        )
    return result


class StatusWriter:
    """Keeps every resource's status and rejection Events up to date."""

    def __init__(
        self,
        source: SnapshotSource,
        sidecars: Callable[[], list[SidecarState]],
        api: client.ApiClient,
        kinds: Sequence[CrdKind],
        *,
        debounce_s: float = 0.2,
        clock: Callable[[], str] = rfc3339_now,
        extra: ExtraStatus | None = None,
    ) -> None:
        self.source = source
        self.sidecars = sidecars
        self.kinds = {k.kind: k for k in kinds}
        self.debounce_s = debounce_s
        self.clock = clock
        self.extra = extra
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        # What was last written, by key, with the uid of the object it was written to.
        self._written: dict[ResourceKey, tuple[str, dict[str, Any]]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def trigger(self) -> None:
        """Something changed: write statuses after the debounce. Any thread."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        """Write statuses whenever triggered, until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake.set()
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.debounce_s)
            self._wake.clear()
            if not await self.write_once():
                self._loop.call_later(RETRY_S, self._wake.set)

    async def write_once(self) -> bool:
        """Patch the statuses that changed; False if some write failed (retry later)."""
        views = build_sidecar_views(self.sidecars(), self.source)
        statuses = build_statuses(
            self.source, views, self.clock(), self.previous_status, self.extra
        )
        ok = True
        for key in set(self._written) - set(statuses):
            del self._written[key]
        for key, (previous, status) in statuses.items():
            uid = _uid(self.source.index.get(key))
            if status == previous:
                self._written[key] = (uid, status)
                continue
            try:
                await asyncio.to_thread(self.apply_status, key, status)
            except API_ERRORS as error:
                if getattr(error, "status", None) != 404:  # 404: gone, the watch will say so
                    log.warning("status of %s %s/%s not written: %s", *key, _reason(error))
                    ok = False
                continue
            self._written[key] = (uid, status)
            event = build_rejection_event(previous, status)
            if event is not None:
                try:
                    await asyncio.to_thread(self.apply_event, key, *event)
                except API_ERRORS as error:
                    log.warning("event for %s %s/%s not posted: %s", *key, _reason(error))
        return ok

    def previous_status(self, key: ResourceKey, resource: Mapping[str, Any]) -> Mapping[str, Any]:
        """The status now: the last one written to this very object, else the watch's.

        The echo of a write may not have reached the index yet; a resource
        deleted and created again under its name (another uid) gets written anew.
        """
        uid, written = self._written.get(key, ("", None))
        if written is not None and uid == _uid(resource):
            return written
        return self.source.index.status_of(key)

    def apply_status(self, key: ResourceKey, status: Mapping[str, Any]) -> None:
        """Merge-patch the status subresource of resource `key`."""
        kind, namespace, name = key
        crd = self.kinds[kind]
        self._custom.patch_namespaced_custom_object_status(
            crd.group,
            crd.version,
            namespace,
            crd.plural,
            name,
            {"status": dict(status)},
            _request_timeout=API_TIMEOUT_S,
        )

    def apply_event(self, key: ResourceKey, reason: str, message: str) -> None:
        """Post a Warning Event about resource `key`."""
        kind, namespace, name = key
        resource = self.source.index.get(key) or {}
        uid = (resource.get("metadata") or {}).get("uid")
        now = datetime.datetime.now(datetime.UTC).isoformat()
        event = {
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": self.kinds[kind].api_version,
                "kind": kind,
                "namespace": namespace,
                "name": name,
                **({"uid": uid} if uid else {}),
            },
            "type": "Warning",
            "reason": reason,
            "message": message[:1024],
            "source": {"component": COMPONENT},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        body = client.CoreV1Event.from_dict(event)
        if body is None:
            raise ValueError("an Event that the client cannot build")
        self._core.create_namespaced_event(namespace, body, _request_timeout=API_TIMEOUT_S)


def _uid(resource: Mapping[str, Any] | None) -> str:
    return str(((resource or {}).get("metadata") or {}).get("uid") or "")


def _reason(error: Exception) -> str:
    return str(getattr(error, "reason", None) or error)
