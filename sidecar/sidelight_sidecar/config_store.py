"""The sidecar's current configuration: versioned, all-or-nothing swaps.

`apply` builds the runtime shape of a new snapshot; if that fails the old
version stays and the reason is returned for the NACK. A request reads
`current` once and keeps that object to the end, so it sees one version from
start to finish. The last good snapshot can be persisted (an emptyDir in a
pod) and is loaded at start, so a restarted sidecar serves without the
operator.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from google.protobuf.message import DecodeError

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.balancer import EndpointRegistry
from sidelight_sidecar.runtime import RuntimeConfig, SnapshotError, build_runtime

log = logging.getLogger(__name__)


class ConfigStore:
    """Holds the current runtime configuration and swaps it atomically."""

    def __init__(self, persist_path: Path | None = None) -> None:
        self.persist_path = persist_path
        self.registry = EndpointRegistry()
        self.current: RuntimeConfig | None = None
        self.listeners: list[Callable[[RuntimeConfig], None]] = []

    def apply(self, snapshot: snapshot_pb2.Snapshot) -> str | None:
        """Swap to `snapshot`; return None on success or the reason it was refused."""
        try:
            runtime = build_runtime(snapshot, self.registry)
        except SnapshotError as exc:
            return str(exc)
        self.current = runtime
        for listener in self.listeners:
            listener(runtime)
        if self.persist_path is not None:
            self._persist(snapshot)
        return None

    def load_persisted(self) -> bool:
        """Serve the persisted last good snapshot, if there is a usable one."""
        if self.persist_path is None or not self.persist_path.exists():
            return False
        snapshot = snapshot_pb2.Snapshot()
        try:
            snapshot.ParseFromString(self.persist_path.read_bytes())
        except (OSError, DecodeError) as exc:
            log.warning("persisted snapshot unreadable, ignored: %s", exc)
            return False
        return self.apply(snapshot) is None

    def _persist(self, snapshot: snapshot_pb2.Snapshot) -> None:
        assert self.persist_path is not None
        directory = self.persist_path.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".snapshot-")
            with os.fdopen(fd, "wb") as f:
                f.write(snapshot.SerializeToString())
            os.replace(tmp, self.persist_path)
        except OSError as exc:
            log.warning("could not persist snapshot %s: %s", snapshot.version, exc)
