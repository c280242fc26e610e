"""The kind path: the same Cluster handle on a kind cluster, through pytest-kind.

Chosen with SIDELIGHT_E2E_CLUSTER=kind where a Docker engine runs (a
developer laptop, a hosted CI). Needs `pip install pytest-kind`, which
fetches the kind and kubectl binaries itself. It cannot run on the build
machines (no Docker), so it is kept small and is not tested there.
"""

from __future__ import annotations

import base64
import importlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sidelight_e2e.cluster import Cluster


def docker_available() -> bool:
    """Whether a Docker engine answers here."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    result = subprocess.run([docker, "info"], capture_output=True, check=False, timeout=30)
    return result.returncode == 0


@dataclass
class KindControlPlane:
    """Creates (or reuses) a kind cluster; `stop()` deletes it unless `keep`."""

    name: str = "sidelight-e2e"
    helm_path: Path | None = None
    keep: bool = False
    _kind: Any = None

    def start(self) -> Cluster:
        """Create the cluster and return the handle the tests use."""
        try:
            pytest_kind = importlib.import_module("pytest_kind")
        except ImportError as error:
            raise RuntimeError(
                "SIDELIGHT_E2E_CLUSTER=kind needs pytest-kind: pip install pytest-kind"
            ) from error
        self._kind = pytest_kind.KindCluster(self.name)
        self._kind.create()
        workdir = Path(tempfile.mkdtemp(prefix="sidelight-e2e-kind-"))
        kubeconfig = Path(self._kind.kubeconfig_path)
        document = yaml.safe_load(kubeconfig.read_text())
        entry = document["clusters"][0]["cluster"]
        ca_path = workdir / "ca.crt"
        ca_path.write_bytes(base64.b64decode(entry["certificate-authority-data"]))
        return Cluster(
            kubeconfig=kubeconfig,
            api_url=entry["server"],
            ca_path=ca_path,
            kubectl_path=Path(self._kind.kubectl_path),
            helm_path=self.helm_path or _which("helm"),
            workdir=workdir,
            kind="kind",
        )

    def stop(self) -> None:
        """Delete the kind cluster (unless keep)."""
        if self._kind is not None and not self.keep:
            self._kind.delete()


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None
