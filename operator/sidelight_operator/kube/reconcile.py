"""From watch events to the index, and from index changes to the hub and status.

`Reconciler` is what the kopf handlers call (`handlers.py`). Each `apply_*`
method stores an event in the `ResourceIndex` and, when that changed what
compile reads, calls `on_change` (the hub's `notify_changed` and the status
writer's `trigger`). A change of status alone changes nothing.

Secrets: the operator watches Secrets but keeps only those that an indexed
resource of the same namespace references (the index decides). When a
resource starts referencing a Secret the index does not hold yet, the
Secret's create event may already have gone by, so it is read once with a
GET; a later watch event always wins over that read.

`apply_prime` lists every resource before the control plane starts
serving, so that a sidecar that connects right after an operator restart
gets the full configuration, never an empty one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_operator.compile import ResourceKey
from sidelight_operator.kube.apiclient import to_dict
from sidelight_operator.kube.index import SECRET, PodInfo, ResourceIndex, key_of
from sidelight_operator.kube.kinds import CrdKind

log = logging.getLogger(__name__)

DELETED = "DELETED"
INJECTED = "sidelight.io/injected"
API_TIMEOUT_S = 10.0


def is_injected(body: Mapping[str, Any]) -> bool:
    """Whether a pod carries the injection marker (label or annotation)."""
    meta = body.get("metadata") or {}
    return INJECTED in (meta.get("labels") or {}) or INJECTED in (meta.get("annotations") or {})


def build_pod_info(body: Mapping[str, Any]) -> PodInfo:
    """The PodInfo of a Pod object."""
    meta = body.get("metadata") or {}
    return PodInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        labels={str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
    )


class Reconciler:
    """Feeds the index from the API and tells `on_change` what changed."""

    def __init__(
        self,
        index: ResourceIndex,
        api: client.ApiClient,
        kinds: Sequence[CrdKind],
        on_change: Callable[[], None],
        namespaces: Sequence[str] = (),
    ) -> None:
        self.index = index
        self.api = api
        self.kinds = tuple(kinds)
        self.on_change = on_change
        self.namespaces = tuple(namespaces)
        self._core = client.CoreV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def apply_resource_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """An LLMRoute (or other indexed kind) was listed, added, modified or deleted."""
        key = key_of(body)
        if event_type == DELETED:
            changed = self.index.remove(key)
        else:
            changed = self.index.put(body)
            if changed:
                self.apply_fetch_secrets(key)
        if changed:
            self.on_change()

    def apply_secret_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A referenced Secret was listed, added, modified or deleted."""
        key = key_of(body)
        changed = self.index.remove(key) if event_type == DELETED else self.index.put(body)
        if changed:
            log.info("Secret %s/%s changed", key[1], key[2])  # never its data
            self.on_change()

    def apply_pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """A sidecar pod was listed, added, modified or deleted: keep its labels."""
        pod = build_pod_info(body)
        if event_type == DELETED:
            changed = self.index.remove_pod(pod.namespace, pod.name)
        else:
            changed = self.index.put_pod(pod)
        if changed:
            self.on_change()

    def wants_pod(self, body: Mapping[str, Any]) -> bool:
        """Pods worth indexing: injected ones, and those a sidecar connected from."""
        meta = body.get("metadata") or {}
        known = self.index.pod(str(meta.get("namespace", "")), str(meta.get("name", "")))
        return known is not None or is_injected(body)

    def wants_secret(self, body: Mapping[str, Any]) -> bool:
        """Secrets worth indexing: those an indexed resource references."""
        _, namespace, name = key_of(body)
        return self.index.wants_secret(namespace, name)

    def apply_fetch_secrets(self, key: ResourceKey) -> None:
        """GET the Secrets that resource `key` references and the index lacks."""
        for name in self.index.missing_secrets(key):
            try:
                secret = self._core.read_namespaced_secret(
                    name, key[1], _request_timeout=API_TIMEOUT_S
                )
            except ApiException as error:
                if error.status == 404:
                    continue  # compile reports it; the create event will bring it
                raise
            body = to_dict(self.api, secret)
            self.index.put_if_absent({**body, "apiVersion": "v1", "kind": SECRET})

    def apply_prime(self) -> int:
        """List every indexed kind (and its Secrets) into the index; how many resources."""
        count = 0
        for crd in self.kinds:
            for item in self._list(crd):
                self.index.put({**item, "apiVersion": crd.api_version, "kind": crd.kind})
                self.apply_fetch_secrets(key_of({**item, "kind": crd.kind}))
                count += 1
        return count

    def _list(self, crd: CrdKind) -> list[dict[str, Any]]:
        if not self.namespaces:
            listed = self._custom.list_cluster_custom_object(
                crd.group, crd.version, crd.plural, _request_timeout=API_TIMEOUT_S
            )
            return list(to_dict(self.api, listed).get("items") or [])
        items: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            listed = self._custom.list_namespaced_custom_object(
                crd.group, crd.version, namespace, crd.plural, _request_timeout=API_TIMEOUT_S
            )
            items.extend(to_dict(self.api, listed).get("items") or [])
        return items
