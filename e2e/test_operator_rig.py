"""The harness of the operator's e2e tests (test_operator.py); it holds no test.

- `operator_account`: ServiceAccount `sidelight-operator` bound to the
  ClusterRole of docs/operator.md (read from the page, so the documented
  RBAC is the tested RBAC), and a kubeconfig with its token.
- `OperatorProcess`: `python -m sidelight_operator` as a local process, with
  the gRPC ControlPlane on loopback behind TLS from a CA made here.
- `sidecar_pod`: a Pod with the `sidelight` native sidecar as the injection
  webhook will write it (downward-API identity, projected token with
  audience `sidelight`, the CA from a ConfigMap, an emptyDir for the last
  snapshot). The fake kubelet runs it; the Pod itself stays Pending.
- `Rig`: one test's namespace, fake provider, operator and sidecars.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import openai
import yaml
from kubernetes import client

from sidelight_e2e.certs import CertificateAuthority
from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet, RunningContainer
from sidelight_e2e.objects import to_dict, to_model
from sidelight_e2e.processes import ManagedProcess, free_port, poll
from sidelight_fake_provider.server import FakeProviderThread
from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "sidelight"
Status = dict[str, Any]
# Until main.py wires `sidelight sidecar`, this runs that sub-command's own parser
# and runner (sidelight_cli.sidecar_cmd) with the same arguments, logging at INFO.
SIDELIGHT_SIDECAR = """
import argparse, asyncio, logging, sys
from sidelight_cli.sidecar_cmd import add_sidecar_command, run_sidecar

parser = argparse.ArgumentParser(prog="sidelight")
add_sidecar_command(parser.add_subparsers(dest="command", required=True))
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
sys.exit(asyncio.run(run_sidecar(parser.parse_args(sys.argv[1:]))))
"""


def answers_ok(url: str) -> bool | None:
    """True if a GET of `url` answers 200, None if it answers an error status."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return True if answer.status == 200 else None
    except urllib.error.HTTPError as error:
        error.close()  # it holds the response open: a ResourceWarning otherwise
        return None


def documented_cluster_role() -> dict[str, Any]:
    """The ClusterRole of docs/operator.md."""
    page = (ROOT / "docs" / "operator.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", page, re.S):
        document = yaml.safe_load(block)
        if isinstance(document, dict) and document.get("kind") == "ClusterRole":
            return document
    raise AssertionError("docs/operator.md has no ClusterRole block")


@contextlib.contextmanager
def operator_account(cluster: Cluster, workdir: Path) -> Iterator[Path]:
    """A kubeconfig for a ServiceAccount with the documented ClusterRole; removed after."""
    suffix = uuid.uuid4().hex[:6]
    system, role = f"sidelight-system-{suffix}", f"sidelight-operator-{suffix}"
    cluster_role = documented_cluster_role()
    cluster_role["metadata"]["name"] = role
    account = {"name": "sidelight-operator", "namespace": system}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", **account}],
    }
    items = [
        cluster_role,
        binding,
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": account},
    ]
    cluster.kubectl("create", "namespace", system)
    try:
        document = {"apiVersion": "v1", "kind": "List", "items": items}
        cluster.kubectl("apply", "-f", "-", input_text=json.dumps(document))
        token = cluster.kubectl("create", "token", account["name"], "-n", system, "--duration=2h")
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {
                        "server": cluster.api_url,
                        "certificate-authority": str(cluster.ca_path),
                    },
                }
            ],
            "users": [{"name": "operator", "user": {"token": token.stdout.strip()}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "operator"}}],
            "current-context": "e2e",
        }
        path = workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        yield path
    finally:
        cluster.kubectl(
            "delete", "clusterrolebinding,clusterrole", role, "--wait=false", check=False
        )
        cluster.kubectl("delete", "namespace", system, "--wait=false", check=False)


@dataclass
class OperatorProcess:
    """`python -m sidelight_operator` as a local process; it can be killed and restarted."""

    kubeconfig: Path
    workdir: Path
    namespaces: tuple[str, ...]
    ca: CertificateAuthority = field(default_factory=lambda: CertificateAuthority("operator-ca"))
    grpc_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    usage_port: int = field(default_factory=free_port)
    process: ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.ca.issue_serving(["127.0.0.1", "localhost"]).write(
            self.workdir / "tls.crt", self.workdir / "tls.key"
        )

    @property
    def target(self) -> str:
        """The ControlPlane address for sidecars."""
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> None:
        """Start the operator and wait until /readyz says it serves."""
        argv = [sys.executable, "-m", "sidelight_operator", "-v", "--grpc-listen", self.target]
        argv += ["--health-listen", f"127.0.0.1:{self.health_port}"]
        argv += ["--usage-listen", f"127.0.0.1:{self.usage_port}"]
        argv += ["--usage-store", str(self.workdir / "usage.db")]
        argv += ["--tls-cert", str(self.workdir / "tls.crt")]
        argv += ["--tls-key", str(self.workdir / "tls.key")]
        for namespace in self.namespaces:
            argv += ["--namespace", namespace]
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": "/usr/bin:/bin"}
        self.process = ManagedProcess("operator", argv, self.workdir / "operator.log", env=env)
        self.process.start()
        poll(self._ready, timeout=30, what="the operator's /readyz", alive=self.process.check_alive)

    def _ready(self) -> bool | None:
        return answers_ok(f"http://127.0.0.1:{self.health_port}/readyz")

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a node failure does."""
        running = self.process.process if self.process is not None else None
        assert running is not None, "the operator was not started"
        running.kill()
        running.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (then SIGKILL) if it runs."""
        if self.process is not None:
            self.process.stop()

    def log_tail(self) -> str:
        """The last lines of the operator's output."""
        return self.process.tail(60) if self.process is not None else ""

    def first_answer(self, token: str, node: control_plane_pb2.Node) -> Any:
        """The first SnapshotResponse of a stream with `token` and `node`, or the RpcError."""
        credentials = grpc.ssl_channel_credentials(root_certificates=self.ca.cert_pem)
        with grpc.secure_channel(self.target, credentials) as channel:
            stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
            hello = control_plane_pb2.SnapshotRequest(node=node)
            metadata = (("authorization", f"Bearer {token}"),)
            answers = stub.StreamSnapshots(iter([hello]), metadata=metadata, timeout=10)
            try:
                return next(iter(answers))
            except grpc.RpcError as error:
                return error


@dataclass
class SidecarProcess:
    """A pod's sidelight container, run by the fake kubelet."""

    container: RunningContainer
    port: int

    def served_model(self, model: str) -> str:
        """Ask for `model` with the openai SDK; the model the provider was asked for."""
        url = f"http://127.0.0.1:{self.port}/v1"
        with openai.OpenAI(base_url=url, api_key="placeholder", max_retries=0) as sdk:
            raw = sdk.chat.completions.with_raw_response.create(
                model=model, messages=[{"role": "user", "content": "hello"}], timeout=10
            )
        raw.parse()
        return raw.headers["x-sidelight-model"]

    def ready(self) -> bool | None:
        """True once /readyz says it holds a snapshot."""
        return answers_ok(f"http://127.0.0.1:{self.port}/readyz")

    def alive(self) -> None:
        """Raise, with its output, if the process exited."""
        self.container.process.check_alive()

    def restart(self) -> None:
        """Stop the process and start it again with the same volumes (a container restart)."""
        self.container.process.stop()
        self.container.process.start()


def sidecar_pod(name: str, target: str, port: int, labels: dict[str, str]) -> dict[str, Any]:
    """A pod with the sidelight native sidecar, as the injection webhook will write it."""
    downward = {
        "SIDELIGHT_POD_NAME": "metadata.name",
        "SIDELIGHT_POD_NAMESPACE": "metadata.namespace",
        "SIDELIGHT_POD_UID": "metadata.uid",
        "SIDELIGHT_SERVICE_ACCOUNT": "spec.serviceAccountName",
    }
    token = {"audience": AUDIENCE, "expirationSeconds": 3600, "path": "token"}
    sidecar = {
        "name": "sidelight",
        "image": "example.invalid/sidelight:0",
        "restartPolicy": "Always",
        "command": ["python", "-c", SIDELIGHT_SIDECAR, "sidecar"],
        "args": [
            f"--control-plane={target}",
            "--ca=/etc/sidelight/ca/ca.crt",
            "--token-file=/var/run/sidelight/token",
            "--labels-file=/etc/sidelight/pod/labels",
            "--snapshot-path=/var/lib/sidelight/snapshot.pb",
            f"--listen=127.0.0.1:{port}",
        ],
        "env": [
            {"name": k, "valueFrom": {"fieldRef": {"fieldPath": v}}} for k, v in downward.items()
        ],
        "volumeMounts": [
            {"name": "token", "mountPath": "/var/run/sidelight", "readOnly": True},
            {"name": "ca", "mountPath": "/etc/sidelight/ca", "readOnly": True},
            {"name": "pod", "mountPath": "/etc/sidelight/pod", "readOnly": True},
            {"name": "state", "mountPath": "/var/lib/sidelight"},
        ],
    }
    labels_file = {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "initContainers": [sidecar],
            "containers": [{"name": "app", "image": "example.invalid/app:0"}],
            "volumes": [
                {"name": "token", "projected": {"sources": [{"serviceAccountToken": token}]}},
                {"name": "ca", "configMap": {"name": "sidelight-ca"}},
                {"name": "pod", "downwardAPI": {"items": [labels_file]}},
                {"name": "state", "emptyDir": {}},
            ],
        },
    }


def pod_token(api: client.ApiClient, pod: Any, audience: str, *, bound: bool = True) -> str:
    """A TokenRequest for the pod's service account, bound to the pod (or not)."""
    meta = pod.metadata
    spec: dict[str, Any] = {"audiences": [audience], "expirationSeconds": 600}
    if bound:
        spec["boundObjectRef"] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta.name,
            "uid": meta.uid,
        }
    request = to_model(api, client.AuthenticationV1TokenRequest, {"spec": spec})
    core = client.CoreV1Api(api)
    answer = core.create_namespaced_service_account_token("default", meta.namespace, request)
    return str(to_dict(api, answer)["status"]["token"])


@dataclass
class Rig:
    """One test's world: a namespace, the fake provider, an operator, sidecars."""

    cluster: Cluster
    api: client.ApiClient
    kubelet: FakeKubelet
    namespace: str
    provider: FakeProviderThread
    operator: OperatorProcess

    def apply(self, *objects: dict[str, Any]) -> None:
        """`kubectl apply` of objects (into the rig's namespace unless they name one)."""
        items = [{**o, "metadata": {"namespace": self.namespace, **o["metadata"]}} for o in objects]
        document = {"apiVersion": "v1", "kind": "List", "items": items}
        self.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(document))

    def route(self, name: str, default: str) -> dict[str, Any]:
        """An LLMRoute: asks for `cheap` go to gpt-4o-mini, every other ask to `default`."""
        backends = [
            {
                "name": model,
                "provider": "openai",
                "model": model,
                "endpoints": [{"url": f"{self.provider.url}/v1"}],
                "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
            }
            for model in ("gpt-4o-mini", "gpt-4o")
        ]
        routes = [
            {"name": "cheap", "match": {"model": "cheap"}, "routeTo": "gpt-4o-mini"},
            {"name": "default", "routeTo": default},
        ]
        return {
            "apiVersion": "sidelight.io/v1alpha1",
            "kind": "LLMRoute",
            "metadata": {"name": name},
            "spec": {"backends": backends, "routes": routes},
        }

    def start_sidecar(self, name: str = "app") -> SidecarProcess:
        """Create the pod and run its sidelight container; wait until it applied a snapshot."""
        port = free_port()
        manifest = sidecar_pod(name, self.operator.target, port, {"app": name})
        pod = client.CoreV1Api(self.api).create_namespaced_pod(
            self.namespace, to_model(self.api, client.V1Pod, manifest)
        )
        sidecar = SidecarProcess(self.kubelet.run(pod, "sidelight"), port)
        poll(sidecar.ready, timeout=30, what="the sidecar's first snapshot", alive=sidecar.alive)
        return sidecar

    def status(self, name: str) -> Status:
        """The LLMRoute's status."""
        found = self.cluster.kubectl("get", "llmroute", name, "-n", self.namespace, "-o", "json")
        status: Status = json.loads(found.stdout).get("status") or {}
        return status

    def wait_status(self, name: str, want: Callable[[Status], bool], what: str) -> Status:
        """Poll the LLMRoute's status until `want` holds."""

        def check() -> Status | None:
            status = self.status(name)
            return status if want(status) else None

        return poll(check, timeout=30, what=what)


def conditions(status: Status) -> dict[str, tuple[str, str]]:
    """type -> (status, reason)."""
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions") or []}


def programmed(generation: int, synced: int = 1) -> Callable[[Status], bool]:
    """A check: Accepted and Programmed at `generation`, with `synced` sidecars."""
    both = {"Accepted": ("True", "Accepted"), "Programmed": ("True", "Programmed")}

    def check(status: Status) -> bool:
        return (
            conditions(status) == both
            and status.get("observedGeneration") == generation
            and status.get("sidecars") == {"synced": synced, "stale": 0, "rejecting": 0}
        )

    return check
