"""A local control plane: etcd, kube-apiserver and kube-controller-manager as processes.

Everything listens on free 127.0.0.1 ports and lives in one work dir
(certificates, etcd data, kubeconfigs, logs) that `stop()` deletes. There is
no scheduler and no kubelet: Pods stay Pending, and `kubelet.py` runs the
containers a test needs.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_e2e.certs import CertificateAuthority, service_account_signing_keys
from sidelight_e2e.cluster import Cluster, write_kubeconfig
from sidelight_e2e.processes import ManagedProcess, free_port, poll

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
API_SERVER_HOSTS = [
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "10.0.0.1",
]


@dataclass
class _Paths:
    root: Path

    def __post_init__(self) -> None:
        for sub in ("pki", "etcd", "logs"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)

    def pki(self, name: str) -> Path:
        return self.root / "pki" / name

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"


@dataclass
class LocalControlPlane:
    """Starts and stops the control plane; `start()` returns the Cluster handle."""

    binaries: dict[str, Path]
    workdir: Path | None = None
    keep_workdir: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)
    cluster: Cluster | None = None

    def start(self, timeout: float = 120.0) -> Cluster:
        """Generate certificates, start the components, wait until they serve."""
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="sidelight-e2e-"))
        paths = _Paths(self.workdir)
        try:
            return self._start(paths, timeout)
        except Exception as error:
            tails = "\n".join(f"----- {p.name} -----\n{p.tail()}" for p in self.processes)
            self.stop()
            raise RuntimeError(
                f"the local control plane did not start: {error}\n{tails}"
            ) from error
        except BaseException:
            self.stop()
            raise

    def _start(self, paths: _Paths, timeout: float) -> Cluster:
        ca = CertificateAuthority()
        ca_path = paths.pki("ca.crt")
        ca.key_pair.write(ca_path, paths.pki("ca.key"))
        serving = ca.issue_serving(API_SERVER_HOSTS, common_name="kube-apiserver")
        serving.write(paths.pki("apiserver.crt"), paths.pki("apiserver.key"))
        service_account_signing_keys().write(paths.pki("sa.pub"), paths.pki("sa.key"))
        admin_cert, admin_key = ca.issue_client("sidelight-e2e-admin", ("system:masters",)).write(
            paths.pki("admin.crt"), paths.pki("admin.key")
        )
        kcm_cert, kcm_key = ca.issue_client("system:kube-controller-manager").write(
            paths.pki("kcm.crt"), paths.pki("kcm.key")
        )
        # The aggregation layer's front proxy has a CA of its own, as kubeadm sets it up.
        front_proxy = CertificateAuthority("sidelight-e2e-front-proxy-ca")
        paths.pki("front-proxy-ca.crt").write_bytes(front_proxy.cert_pem)
        front_proxy.issue_client("front-proxy-client").write(
            paths.pki("front-proxy-client.crt"), paths.pki("front-proxy-client.key")
        )

        etcd_port, etcd_peer_port = free_port(), free_port()
        api_port, kcm_port = free_port(), free_port()
        api_url = f"https://127.0.0.1:{api_port}"

        etcd = self._spawn(paths, "etcd", self._etcd_argv(paths, etcd_port, etcd_peer_port))
        poll(
            lambda: _http_ok(f"http://127.0.0.1:{etcd_port}/health"),
            timeout=timeout,
            what="etcd /health",
            alive=etcd.check_alive,
        )
        apiserver = self._spawn(
            paths, "kube-apiserver", self._apiserver_argv(paths, etcd_port, api_port)
        )
        api_context = ssl.create_default_context(cafile=str(ca_path))
        api_context.load_cert_chain(str(admin_cert), str(admin_key))
        poll(
            lambda: _http_ok(f"{api_url}/readyz", api_context),
            timeout=timeout,
            what="kube-apiserver /readyz",
            alive=apiserver.check_alive,
        )
        kubeconfig = write_kubeconfig(
            self.workdir_path / "kubeconfig",
            server=api_url,
            ca_path=ca_path,
            user="sidelight-e2e-admin",
            cert_path=admin_cert,
            key_path=admin_key,
        )
        kcm_kubeconfig = write_kubeconfig(
            self.workdir_path / "kcm.kubeconfig",
            server=api_url,
            ca_path=ca_path,
            user="system:kube-controller-manager",
            cert_path=kcm_cert,
            key_path=kcm_key,
        )
        kcm = self._spawn(
            paths, "kube-controller-manager", self._kcm_argv(paths, kcm_kubeconfig, kcm_port)
        )
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE
        poll(
            lambda: _http_ok(f"https://127.0.0.1:{kcm_port}/healthz", insecure),
            timeout=timeout,
            what="kube-controller-manager /healthz",
            alive=kcm.check_alive,
        )
        self.cluster = Cluster(
            kubeconfig=kubeconfig,
            api_url=api_url,
            ca_path=ca_path,
            kubectl_path=self.binaries["kubectl"],
            helm_path=self.binaries.get("helm"),
            workdir=self.workdir_path,
            logs={p.name: p.log_path for p in self.processes},
            ca=ca,
        )
        _wait_for_controllers(self.cluster, timeout, kcm)
        return self.cluster

    @property
    def workdir_path(self) -> Path:
        """The work dir (set by start())."""
        if self.workdir is None:
            raise RuntimeError("the control plane was not started")
        return self.workdir

    def _spawn(self, paths: _Paths, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name=name, argv=argv, log_path=paths.log(name), cwd=paths.root)
        self.processes.append(process)
        process.start()
        return process

    def _etcd_argv(self, paths: _Paths, port: int, peer_port: int) -> list[str]:
        peer = f"http://127.0.0.1:{peer_port}"
        return [
            str(self.binaries["etcd"]),
            "--name=sidelight-e2e",
            f"--data-dir={paths.root / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{port}",
            f"--advertise-client-urls=http://127.0.0.1:{port}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=sidelight-e2e={peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
        ]

    def _apiserver_argv(self, paths: _Paths, etcd_port: int, port: int) -> list[str]:
        return [
            str(self.binaries["kube-apiserver"]),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={paths.pki('apiserver-generated')}",
            f"--tls-cert-file={paths.pki('apiserver.crt')}",
            f"--tls-private-key-file={paths.pki('apiserver.key')}",
            f"--client-ca-file={paths.pki('ca.crt')}",
            "--authorization-mode=RBAC",
            f"--requestheader-client-ca-file={paths.pki('front-proxy-ca.crt')}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={paths.pki('front-proxy-client.crt')}",
            f"--proxy-client-key-file={paths.pki('front-proxy-client.key')}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={paths.pki('sa.pub')}",
            f"--service-account-signing-key-file={paths.pki('sa.key')}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # 127.0.0.1 is not a valid Endpoints address; nothing in-cluster needs it.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
        ]

    def _kcm_argv(self, paths: _Paths, kubeconfig: Path, port: int) -> list[str]:
        return [
            str(self.binaries["kube-controller-manager"]),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--service-account-private-key-file={paths.pki('sa.key')}",
            f"--root-ca-file={paths.pki('ca.crt')}",
            f"--cluster-signing-cert-file={paths.pki('ca.crt')}",
            f"--cluster-signing-key-file={paths.pki('ca.key')}",
            "--use-service-account-credentials=true",
            # All on-by-default controllers. Since 1.3x the cloud ones (service-lb,
            # node-route, cloud-node-lifecycle) live only in cloud-controller-manager.
            "--controllers=*",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def stop(self) -> None:
        """Stop the components (newest first) and delete the work dir."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def state(self) -> dict[str, Any]:
        """What `e2e/cluster down` needs to stop a detached control plane."""
        return {
            "workdir": str(self.workdir_path),
            "kubeconfig": str(self.workdir_path / "kubeconfig"),
            "api_url": self.cluster.api_url if self.cluster else None,
            "processes": [
                {"name": p.name, "pid": p.pid, "exe": p.argv[0], "log": str(p.log_path)}
                for p in self.processes
            ],
        }


def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return True if response.status == 200 else None
    except urllib.error.HTTPError as error:  # not ready yet (500, 503): close its socket
        error.close()
        return None


def _wait_for_controllers(cluster: Cluster, timeout: float, kcm: ManagedProcess) -> None:
    """Wait until kube-controller-manager made what every namespace gets.

    The service-account controller creates `default`, the root-CA publisher
    creates `kube-root-ca.crt`; Pods cannot be created before the first.
    """
    with cluster.api_client() as api:
        core = client.CoreV1Api(api)

        def ready() -> bool | None:
            try:
                core.read_namespaced_service_account("default", "default")
                core.read_namespaced_config_map("kube-root-ca.crt", "default")
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            return True

        poll(
            ready,
            timeout=timeout,
            what="the default ServiceAccount and kube-root-ca.crt",
            alive=kcm.check_alive,
            interval=0.2,
        )
