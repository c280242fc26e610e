"""Which namespaces opt in: an in-memory index of Namespaces, fed by a watch.

A webhook's `namespaceSelector` sees labels only, and the opt-in is an
annotation (a label works too). So the webhook is called for the pods of
every namespace but the system ones and the operator's, and asks this index.
`NamespaceIndex.resolve` reads a namespace the index does not know with a
GET (a namespace created and annotated a moment ago, whose watch event is
still on its way), and keeps the answer unless a watch event came first:
the watch always wins over such a read.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

NamespaceReader = Callable[[str], Awaitable[dict[str, Any] | None]]
"""GET of a Namespace by name; None if it does not exist."""


def _slim(namespace: Mapping[str, Any]) -> dict[str, Any]:
    meta = namespace.get("metadata") or {}
    kept = {k: meta[k] for k in ("name", "labels", "annotations") if meta.get(k)}
    return {"metadata": kept}


class NamespaceIndex:
    """Namespaces by name (their name, labels and annotations only); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, dict[str, Any]] = {}
        self.synced = threading.Event()
        """Set once the whole list has been read."""

    def put(self, namespace: Mapping[str, Any]) -> None:
        """Keep a namespace as a watch event shows it."""
        slim = _slim(namespace)
        with self._lock:
            self._items[slim["metadata"]["name"]] = slim

    def delete(self, name: str) -> None:
        """Forget a namespace."""
        with self._lock:
            self._items.pop(name, None)

    def replace(self, namespaces: Iterable[Mapping[str, Any]]) -> None:
        """Hold exactly these namespaces (after a list)."""
        items = {s["metadata"]["name"]: s for s in map(_slim, namespaces)}
        with self._lock:
            self._items = items
        self.synced.set()

    def get(self, name: str) -> dict[str, Any] | None:
        """The namespace, if the index holds it."""
        with self._lock:
            return self._items.get(name)

    async def resolve(self, name: str, read: NamespaceReader) -> dict[str, Any] | None:
        """The namespace, read with `read` on a miss; None if it does not exist."""
        found = self.get(name)
        if found is not None:
            return found
        fresh = await read(name)
        if fresh is None:
            return None
        slim = _slim(fresh)
        with self._lock:
            return self._items.setdefault(name, slim)


class NamespaceWatch:
    """Lists and watches Namespaces into an index, in a daemon thread, until stopped."""

    def __init__(
        self, api: client.ApiClient, index: NamespaceIndex, *, timeout_seconds: int = 30
    ) -> None:
        self.index = index
        self._core = client.CoreV1Api(api)
        self._timeout = timeout_seconds
        self._stopping = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]  # untyped in the client
        self._thread = threading.Thread(target=self._run, name="namespace watch", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the thread to end; it does after the current watch's next event or timeout."""
        self._stopping.set()
        self._watch.stop()  # type: ignore[no-untyped-call]

    def _run(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                self._list_and_watch()
                backoff = 0.5
            except Exception as error:  # a broken watch: list again after a pause
                if self._stopping.is_set():
                    return
                log.warning("namespace watch failed (%s); listing again in %.1fs", error, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _list_and_watch(self) -> None:
        listing = self._core.list_namespace(_preload_content=False, _request_timeout=30)
        document = _json(listing)
        self.index.replace(document.get("items") or [])
        version = document["metadata"]["resourceVersion"]
        while not self._stopping.is_set():
            try:
                version = self._watch_from(version)
            except ApiException as error:
                if error.status == 410:  # too old: list again
                    return
                raise

    def _watch_from(self, version: str) -> str:
        stream = self._watch.stream(  # type: ignore[no-untyped-call]
            self._core.list_namespace,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._timeout,
            _request_timeout=self._timeout + 15,
        )
        for event in stream:
            kind, item = event["type"], event["raw_object"]
            version = item["metadata"].get("resourceVersion") or version
            if kind in ("ADDED", "MODIFIED"):
                self.index.put(item)
            elif kind == "DELETED":
                self.index.delete(item["metadata"]["name"])
        return version


def _json(response: Any) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(response.data)
    finally:
        response.release_conn()
    return document
