"""Harness of the injection and user-path e2e tests; it holds no test.

`install_sidelight` does what a user does, `helm install` of charts/sidelight,
with the values the rig needs, and then plays the kubelet for the chart's own
operator Pod (the one the controller-manager made from its Deployment):

- The rig has no Service networking and no network namespaces, so the test
  overrides where things are reached: `webhook.url` points the
  MutatingWebhookConfiguration's clientConfig at https://127.0.0.1:PORT
  instead of the Service, `tls.extraIPs` adds 127.0.0.1 to the generated
  certificate, `sidecar.controlPlaneAddress` sends sidecars to 127.0.0.1,
  the ports are free ones, and the operator's `0.0.0.0` listen addresses are
  rewritten to 127.0.0.1 before it starts.
- The operator runs as the chart's ServiceAccount, with the chart's RBAC:
  the fake kubelet cannot map the in-cluster token's fixed path, so it gets
  a kubeconfig with a token of that ServiceAccount (KUBECONFIG).

Everything else (the certificate Secret, the injection ConfigMap, the
command line) is the chart's, as the API server holds it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet, RunningContainer
from sidelight_e2e.objects import to_dict, to_model
from sidelight_e2e.processes import free_port, poll

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "sidelight"
INJECT = "sidelight.io/inject"
CLEANUP_LABEL = "sidelight.e2e/injection"
"""On the namespaces `create_namespace` makes; they go with the release."""


def answers_ok(url: str) -> bool | None:
    """True if a GET of `url` answers 200; None while it refuses or answers an error."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return True if answer.status == 200 else None
    except urllib.error.HTTPError as error:
        error.close()
        return None
    except OSError:
        return None


@dataclass
class SidelightInstall:
    """A release of the chart and its operator, running on loopback."""

    cluster: Cluster
    api: client.ApiClient
    namespace: str
    grpc_port: int
    webhook_port: int
    health_port: int
    sidecar_port: int
    http_port: int
    operator: RunningContainer | None = None
    extra_values: dict[str, str] = field(default_factory=dict)
    """More `--set` values a test module needs (its tracing endpoint, say)."""

    def values(self) -> list[str]:
        """The `--set` options the rig needs (see the module docstring)."""
        settings = {
            "webhook.url": f"https://127.0.0.1:{self.webhook_port}/mutate-pods",
            "tls.extraIPs": "{127.0.0.1}",
            "sidecar.controlPlaneAddress": f"127.0.0.1:{self.grpc_port}",
            "sidecar.port": str(self.sidecar_port),
            "ports.grpc": str(self.grpc_port),
            "ports.webhook": str(self.webhook_port),
            "ports.health": str(self.health_port),
            "ports.http": str(self.http_port),
            "verbose": "true",
            **self.extra_values,
        }
        return [arg for key, value in settings.items() for arg in ("--set", f"{key}={value}")]

    @property
    def ca_pem(self) -> str:
        """The CA the chart generated (the Secret's ca.crt)."""
        secret = client.CoreV1Api(self.api).read_namespaced_secret(
            "sidelight-operator-tls", self.namespace
        )
        return base64.b64decode((secret.data or {})["ca.crt"]).decode()

    def operator_pod(self) -> dict[str, Any]:
        """The Pod the controller-manager made from the chart's Deployment."""

        def found() -> dict[str, Any] | None:
            pods = client.CoreV1Api(self.api).list_namespaced_pod(
                self.namespace, label_selector="sidelight.io/operator=true"
            )
            return to_dict(self.api, pods.items[0]) if pods.items else None

        return poll(found, timeout=30, what="the operator's Pod")

    def start_operator(self, kubelet: FakeKubelet, workdir: Path) -> RunningContainer:
        """Run the chart's operator container, as its ServiceAccount, until /readyz."""
        pod = self.operator_pod()
        (container,) = pod["spec"]["containers"]
        container["args"] = [a.replace("=0.0.0.0:", "=127.0.0.1:") for a in container["args"]]
        kubeconfig = self._service_account_kubeconfig(workdir)
        self.operator = kubelet.run(pod, "operator", extra_env={"KUBECONFIG": str(kubeconfig)})
        self.wait_ready()
        return self.operator

    def wait_ready(self) -> None:
        """Wait until the operator's /readyz answers (it serves the webhook then)."""
        running = self.operator
        assert running is not None, "the operator was not started"
        poll(
            lambda: answers_ok(f"http://127.0.0.1:{self.health_port}/readyz"),
            timeout=60,
            what="the operator's /readyz",
            alive=running.process.check_alive,
        )

    def _service_account_kubeconfig(self, workdir: Path) -> Path:
        token = self.cluster.kubectl(
            "create", "token", "sidelight-operator", "-n", self.namespace, "--duration=2h"
        ).stdout.strip()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {
                        "server": self.cluster.api_url,
                        "certificate-authority": str(self.cluster.ca_path),
                    },
                }
            ],
            "users": [{"name": "operator", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "operator"}}],
            "current-context": "e2e",
        }
        path = workdir / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def create_namespace(self, *, opt_in: str | None, label: bool = False) -> str:
        """A namespace, annotated (or labelled) `sidelight.io/inject: <opt_in>` if given."""
        name = f"app-{uuid.uuid4().hex[:8]}"
        meta: dict[str, Any] = {"name": name, "labels": {CLEANUP_LABEL: "true"}}
        if opt_in is not None:
            meta.setdefault("labels" if label else "annotations", {})[INJECT] = opt_in
        namespace = to_model(self.api, client.V1Namespace, {"metadata": meta})
        client.CoreV1Api(self.api).create_namespace(namespace)
        return name


@contextlib.contextmanager
def install_sidelight(
    cluster: Cluster,
    api: client.ApiClient,
    workdir: Path,
    values: Mapping[str, str] | None = None,
) -> Iterator[SidelightInstall]:
    """`helm install` the chart (with more `values`) and start its operator; clean up after."""
    namespace = f"sidelight-{uuid.uuid4().hex[:6]}"
    install = SidelightInstall(
        cluster, api, namespace, free_port(), free_port(), free_port(), free_port(), free_port()
    )
    install.extra_values.update(values or {})
    kubelet = FakeKubelet(api, api_url=cluster.api_url)
    release = ["-n", namespace, "--create-namespace", *install.values()]
    cluster.helm("install", "sidelight", str(CHART), *release)
    try:
        install.start_operator(kubelet, workdir)
        yield install
    finally:
        if install.operator is not None:
            print(f"----- operator output (tail) -----\n{install.operator.output()[-6000:]}")
        kubelet.stop_all()
        cluster.helm("uninstall", "sidelight", "-n", namespace, check=False)
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        selector = f"{CLEANUP_LABEL}=true"
        cluster.kubectl("delete", "namespace", "-l", selector, "--wait=false", check=False)


def pod_of(api: client.ApiClient, namespace: str, selector: str) -> dict[str, Any]:
    """The first Pod matching `selector` (a controller makes it a moment later)."""

    def found() -> dict[str, Any] | None:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=selector)
        return to_dict(api, pods.items[0]) if pods.items else None

    return poll(found, timeout=30, what=f"a pod {selector} in {namespace}")


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every container and init container of a pod, by name."""
    spec = pod["spec"]
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (or valueFrom) of a container's env."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def deployment(name: str, labels: dict[str, str], command: list[str]) -> dict[str, Any]:
    """A one-replica Deployment of an `app` container running `command`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {"name": "app", "image": "example.invalid/app:1", "command": command}
                    ]
                },
            },
        },
    }


def apply(cluster: Cluster, namespace: str, *objects: dict[str, Any]) -> None:
    """`kubectl apply` of objects into `namespace`."""
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input_text=json.dumps(document))
