"""Start the cluster the e2e run uses: the local control plane, or kind on request.

SIDELIGHT_E2E_CLUSTER   `local` (default) or `kind` (needs Docker and pytest-kind)
SIDELIGHT_E2E_BUILD     `0` to fail instead of building missing binaries
SIDELIGHT_E2E_KEEP      `1` to keep the work dir (certificates, logs) after the run
"""

from __future__ import annotations

import os
from collections.abc import Callable

from sidelight_e2e.binaries import CONTROL_PLANE, binary_path, ensure_binaries
from sidelight_e2e.cluster import Cluster
from sidelight_e2e.controlplane import LocalControlPlane
from sidelight_e2e.kind import KindControlPlane, docker_available


def cluster_mode() -> str:
    """`local` or `kind`, from SIDELIGHT_E2E_CLUSTER."""
    mode = os.environ.get("SIDELIGHT_E2E_CLUSTER", "local").strip().lower() or "local"
    if mode not in ("local", "kind"):
        raise RuntimeError(f"SIDELIGHT_E2E_CLUSTER={mode!r}: expected 'local' or 'kind'")
    return mode


def start_cluster() -> tuple[Cluster, Callable[[], None]]:
    """Start the cluster; return its handle and the function that stops it."""
    if cluster_mode() == "kind":
        if not docker_available():
            raise RuntimeError(
                "SIDELIGHT_E2E_CLUSTER=kind but no Docker engine answers `docker info`; "
                "unset SIDELIGHT_E2E_CLUSTER to use the local control plane"
            )
        helm = binary_path("helm")
        kind = KindControlPlane(helm_path=helm if helm.exists() else None)
        return kind.start(), kind.stop
    binaries = ensure_binaries(CONTROL_PLANE, build=os.environ.get("SIDELIGHT_E2E_BUILD") != "0")
    plane = LocalControlPlane(binaries, keep_workdir=os.environ.get("SIDELIGHT_E2E_KEEP") == "1")
    return plane.start(), plane.stop
