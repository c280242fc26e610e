"""The handle that e2e tests get: kubeconfig, API URL, CA, clients, kubectl, helm, logs.

The same handle describes the local control plane (`controlplane.py`) and a
kind cluster (`kind.py`), so tests do not know which one they run on.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from sidelight_e2e.certs import CertificateAuthority
from sidelight_e2e.processes import tail


class CommandError(RuntimeError):
    """kubectl or helm exited non-zero; the message carries its output."""

    def __init__(self, argv: list[str], result: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"{' '.join(argv)} exited with code {result.returncode}\n"
            f"--- stdout\n{result.stdout}--- stderr\n{result.stderr}"
        )
        self.result = result


@dataclass
class Cluster:
    """Access to a running Kubernetes API server, as its admin."""

    kubeconfig: Path
    api_url: str
    ca_path: Path
    kubectl_path: Path
    helm_path: Path | None
    workdir: Path
    logs: dict[str, Path] = field(default_factory=dict)
    ca: CertificateAuthority | None = None
    """The CA that signed the API server's certificate, to issue more (local only)."""
    kind: str = "local"

    def api_client(self, token: str | None = None) -> client.ApiClient:
        """A new kubernetes ApiClient: the admin, or the bearer of `token`."""
        configuration = client.Configuration()
        if token is None:
            # Untyped in the client; it reads the kubeconfig into `configuration`.
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig), client_configuration=configuration
            )
            return client.ApiClient(configuration)
        configuration.host = self.api_url
        configuration.ssl_ca_cert = str(self.ca_path)
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
        return client.ApiClient(configuration)

    def _run(
        self,
        argv: list[str],
        *,
        input_text: str | None,
        check: bool,
        timeout: float,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, **(env or {})},
        )
        if check and result.returncode != 0:
            raise CommandError(argv, result)
        return result

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster; raise CommandError if it fails and `check`."""
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input_text=input_text, check=check, timeout=timeout)

    def helm(
        self, *args: str, input_text: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster, with its caches inside the work dir."""
        if self.helm_path is None:
            raise RuntimeError("helm is not available for this cluster (e2e/build-binaries helm)")
        home = self.workdir / "helm"
        env = {
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
            "KUBECONFIG": str(self.kubeconfig),
        }
        argv = [str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input_text=input_text, check=check, timeout=timeout, env=env)

    def log_tails(self, lines: int = 30) -> str:
        """The last lines of each component's log, for a failure report."""
        parts = []
        for name, path in self.logs.items():
            parts.append(f"----- {name} ({path}) -----\n{tail(path, lines)}")
        return "\n".join(parts)

    def env(self) -> dict[str, str]:
        """Environment variables that point clients at this cluster."""
        return {"KUBECONFIG": str(self.kubeconfig), "SIDELIGHT_E2E_API_URL": self.api_url}


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_path: Path,
    user: str,
    cert_path: Path,
    key_path: Path,
) -> Path:
    """Write a one-cluster, one-user kubeconfig that refers to PEM files."""
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sidelight-e2e",
                "cluster": {"server": server, "certificate-authority": str(ca_path)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(cert_path), "client-key": str(key_path)},
            }
        ],
        "contexts": [
            {"name": "sidelight-e2e", "context": {"cluster": "sidelight-e2e", "user": user}}
        ],
        "current-context": "sidelight-e2e",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
