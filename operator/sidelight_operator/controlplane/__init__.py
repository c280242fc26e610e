"""The ControlPlane service: versioned snapshots pushed to sidecars, ACKed or NACKed.

- `Hub(snapshot_for, debounce_s)`: the connected sidecars and their state;
  `notify_changed()` after any change to the resources; `sidecars()`;
  `listeners` called on connect, ACK, NACK and disconnect.
- `serve(hub, authenticator, address, tls, usage)`: the grpc.aio server.
- `UsageReporting(ingest, identity_labels, trust_records)`: what ReportUsage
  needs; `UsageIngest` is the store's interface; `build_identity` stamps a
  record with its pod's identity (usage.py).
- `Authenticator`, `PodRef`, `Unauthenticated`, `PermissionDenied`: who a
  stream speaks for. `LoopbackAuthenticator` trusts the sidecar's claims and
  is for standalone mode on loopback only.

See docs/control-plane.md.
"""

from sidelight_operator.controlplane.auth import (
    Authenticator,
    LoopbackAuthenticator,
    PermissionDenied,
    PodRef,
    Unauthenticated,
    bearer_token,
    is_loopback_peer,
)
from sidelight_operator.controlplane.hub import (
    Hub,
    Nack,
    Session,
    SidecarState,
    SnapshotFor,
    SnapshotUnavailable,
)
from sidelight_operator.controlplane.service import ControlPlaneServer, ControlPlaneService, serve
from sidelight_operator.controlplane.usage import (
    UsageIngest,
    UsageReporting,
    build_identity,
    consistent_workload,
)

__all__ = [
    "Authenticator",
    "ControlPlaneServer",
    "ControlPlaneService",
    "Hub",
    "LoopbackAuthenticator",
    "Nack",
    "PermissionDenied",
    "PodRef",
    "Session",
    "SidecarState",
    "SnapshotFor",
    "SnapshotUnavailable",
    "Unauthenticated",
    "UsageIngest",
    "UsageReporting",
    "bearer_token",
    "build_identity",
    "consistent_workload",
    "is_loopback_peer",
    "serve",
]
