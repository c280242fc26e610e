"""Usage end to end: three sidecars in two namespaces report, the operator adds up, exactly.

The operator runs as a process (test_operator_rig.py) watching two
namespaces, with its usage store on disk and its usage API on loopback. The
fake kubelet runs three pods' `sidelight` containers, labelled with team,
application and environment (the chart's default identity labels); the pods'
own environment says nothing of them, so the team and application in the
store can only come from the operator's reading of the pods. Requests go
through the sidecars with the `openai` and `anthropic` SDKs to the fake
provider; what the provider reported (each answer's usage) is summed by
namespace, team and application and compared with the operator's
`GET /api/v1/usage/cost`, to the token and to the nano-dollar.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from kubernetes import client
from test_operator_rig import (
    ROOT,
    OperatorProcess,
    SidecarProcess,
    operator_account,
    sidecar_pod,
)

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.objects import to_model
from sidelight_e2e.processes import free_port, poll
from sidelight_fake_provider.server import FakeProviderThread

GPT, CLAUDE = "gpt-4o-mini", "claude-3-5-haiku-latest"
# Dollars per million tokens, so that every token costs whole nano-dollars.
PRICES = {GPT: (2_000, 8_000), CLAUDE: (1_000, 5_000)}
TEAM, APPLICATION, ENVIRONMENT = (
    "sidelight.io/team",
    "app.kubernetes.io/name",
    "sidelight.io/environment",
)
DIMENSIONS = ("namespace", "team", "application")
Sums = tuple[int, int, int, int]
"""requests, input tokens, output tokens, nano-dollars."""


@pytest.fixture(scope="module")
def sidelight_crds(cluster: Cluster) -> None:
    """Every CRD of crds/, established (left installed for the rest of the run)."""
    names = cluster.kubectl("apply", "-f", str(ROOT / "crds"), "-o", "name").stdout.split()
    cluster.kubectl("wait", "--for=condition=Established", *names)


@pytest.fixture(scope="module")
def operator_kubeconfig(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The operator's kubeconfig: its own ServiceAccount, the documented RBAC."""
    with operator_account(cluster, tmp_path_factory.mktemp("operator")) as path:
        yield path


@dataclass
class Spend:
    """What the provider reported, summed per value of each dimension."""

    sums: dict[str, Counter[str]] = field(default_factory=dict)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pod: Pod, model: str, input_tokens: int, output_tokens: int) -> None:
        price_in, price_out = PRICES[model]
        nusd = (input_tokens * price_in + output_tokens * price_out) * 1_000
        with self._lock:
            self.requests += 1
            for dimension in DIMENSIONS:
                key = f"{dimension}={pod.identity[dimension]}"
                for measure, value in zip(
                    ("requests", "input", "output", "nusd"),
                    (1, input_tokens, output_tokens, nusd),
                    strict=True,
                ):
                    self.sums.setdefault(measure, Counter())[key] += value

    def by(self, dimension: str) -> dict[str, Sums]:
        prefix = f"{dimension}="
        with self._lock:
            keys = [k for k in self.sums.get("requests", {}) if k.startswith(prefix)]
            return {
                k.removeprefix(prefix): (
                    self.sums["requests"][k],
                    self.sums["input"][k],
                    self.sums["output"][k],
                    self.sums["nusd"][k],
                )
                for k in keys
            }


@dataclass
class Pod:
    """One running sidecar and the identity its labels give it."""

    sidecar: SidecarProcess
    identity: dict[str, str]

    def ask(self, spend: Spend, n: int) -> None:
        """One request with each SDK; what the provider reported goes into `spend`."""
        base = f"http://127.0.0.1:{self.sidecar.port}"
        text = f"question {n} from {self.identity['pod']}"
        with openai.OpenAI(base_url=f"{base}/v1", api_key="placeholder", max_retries=0) as sdk:
            completion = sdk.chat.completions.create(
                model=GPT, messages=[{"role": "user", "content": text}], timeout=10
            )
        assert completion.usage is not None
        spend.add(self, GPT, completion.usage.prompt_tokens, completion.usage.completion_tokens)
        with anthropic.Anthropic(base_url=base, api_key="placeholder", max_retries=0) as sdk:
            message = sdk.messages.create(
                model=CLAUDE,
                max_tokens=64,
                messages=[{"role": "user", "content": text}],
                timeout=10,
            )
        spend.add(self, CLAUDE, message.usage.input_tokens, message.usage.output_tokens)


@dataclass
class UsageWorld:
    """Two namespaces with routes, the fake provider, the operator, the pods."""

    api: client.ApiClient
    cluster: Cluster
    kubelet: FakeKubelet
    namespaces: tuple[str, str]
    provider: FakeProviderThread
    operator: OperatorProcess
    pods: list[Pod] = field(default_factory=list)

    def prepare(self, namespace: str) -> None:
        core = client.CoreV1Api(self.api)
        for name in ("openai", "anthropic"):
            secret = {"metadata": {"name": name}, "stringData": {"api-key": f"sk-{name}"}}
            core.create_namespaced_secret(namespace, to_model(self.api, client.V1Secret, secret))
        data = {"ca.crt": self.operator.ca.cert_pem.decode()}
        ca = {"metadata": {"name": "sidelight-ca"}, "data": data}
        core.create_namespaced_config_map(namespace, to_model(self.api, client.V1ConfigMap, ca))
        backends = [
            backend(GPT, "openai", f"{self.provider.url}/v1"),
            backend(CLAUDE, "anthropic", self.provider.url),
        ]
        route = {
            "apiVersion": "sidelight.io/v1alpha1",
            "kind": "LLMRoute",
            "metadata": {"name": "assistant", "namespace": namespace},
            "spec": {
                "backends": backends,
                "routes": [
                    {"name": "claude", "match": {"model": CLAUDE}, "routeTo": CLAUDE},
                    {"name": "default", "routeTo": GPT},
                ],
            },
        }
        self.cluster.kubectl("apply", "-f", "-", input_text=json.dumps(route))

    def start_pod(self, namespace: str, name: str, team: str, app: str, env: str) -> Pod:
        port = free_port()
        labels = {TEAM: team, APPLICATION: app, ENVIRONMENT: env}
        manifest = sidecar_pod(name, self.operator.target, port, labels)
        created = client.CoreV1Api(self.api).create_namespaced_pod(
            namespace, to_model(self.api, client.V1Pod, manifest)
        )
        sidecar = SidecarProcess(self.kubelet.run(created, "sidelight"), port)
        poll(sidecar.ready, timeout=30, what=f"{name}'s first snapshot", alive=sidecar.alive)
        identity = {"namespace": namespace, "pod": name, "team": team, "application": app}
        pod = Pod(sidecar, identity)
        self.pods.append(pod)
        return pod

    def cost_by(self, dimension: str) -> dict[str, Sums]:
        """The operator's usage API, grouped by `dimension`, in the units of `Spend`."""
        url = (
            f"http://127.0.0.1:{self.operator.usage_port}/api/v1/usage/cost?by={dimension}&since=1h"
        )
        with urllib.request.urlopen(url, timeout=5) as answer:
            report = json.load(answer)
        return {
            g["key"]: (
                g["requests"],
                g["input_tokens"],
                g["output_tokens"],
                round(g["cost_usd"] * 1e9),
            )
            for g in report["groups"]
        }

    def stored_requests(self) -> int:
        return sum(sums[0] for sums in self.cost_by("namespace").values())

    def assert_adds_up(self, spend: Spend) -> None:
        """Wait for every record, then compare every dimension exactly."""
        poll(
            lambda: True if self.stored_requests() >= spend.requests else None,
            timeout=60,
            what=f"{spend.requests} usage records in the operator's store",
        )
        for dimension in DIMENSIONS:
            assert self.cost_by(dimension) == spend.by(dimension), dimension
        assert len(self.provider.requests) == spend.requests


def backend(model: str, provider: str, url: str) -> dict[str, Any]:
    price_in, price_out = PRICES[model]
    return {
        "name": model,
        "provider": provider,
        "model": model,
        "endpoints": [{"url": url}],
        "credentials": {"secretRef": {"name": provider, "key": "api-key"}},
        "pricing": {"inputPerMillionTokens": price_in, "outputPerMillionTokens": price_out},
    }


@pytest.fixture
def world(
    cluster: Cluster,
    kube_client: client.ApiClient,
    fake_kubelet: FakeKubelet,
    namespace: str,
    sidelight_crds: None,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> Iterator[UsageWorld]:
    """`namespace` and a second one, prepared; the operator started; no pods yet."""
    other = f"{namespace[:50]}-b"
    cluster.kubectl("create", "namespace", other)
    core = client.CoreV1Api(kube_client)
    poll(
        lambda: core.read_namespaced_service_account("default", other),
        timeout=30,
        what=f"ServiceAccount {other}/default",
    )
    operator = OperatorProcess(operator_kubeconfig, tmp_path, (namespace, other))
    try:
        with FakeProviderThread() as provider:
            made = UsageWorld(
                kube_client, cluster, fake_kubelet, (namespace, other), provider, operator
            )
            for name in made.namespaces:
                made.prepare(name)
            operator.start()
            try:
                yield made
            finally:
                operator.stop()
                print(f"----- operator log (tail) -----\n{operator.log_tail()}")
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def start_three_pods(world: UsageWorld) -> list[Pod]:
    first, second = world.namespaces
    return [
        world.start_pod(first, "chat", "payments", "chat", "prod"),
        world.start_pod(first, "search", "payments", "search", "prod"),
        world.start_pod(second, "notebook", "research", "chat", "dev"),
    ]


def test_three_sidecars_in_two_namespaces_add_up_exactly(world: UsageWorld) -> None:
    pods = start_three_pods(world)
    spend = Spend()
    for n in range(6):
        for pod in pods:
            pod.ask(spend, n)
    for pod in pods:  # SIGTERM: each flushes what it has before it exits
        pod.sidecar.container.process.stop()
    world.assert_adds_up(spend)
    assert world.cost_by("namespace").keys() == set(world.namespaces)
    assert world.cost_by("team").keys() == {"payments", "research"}
    assert world.cost_by("application").keys() == {"chat", "search"}


def test_an_operator_killed_under_traffic_loses_and_doubles_nothing(world: UsageWorld) -> None:
    pods = start_three_pods(world)
    spend = Spend()
    stop = threading.Event()
    failures: list[BaseException] = []

    def traffic(pod: Pod) -> None:
        n = 0
        while not stop.is_set():
            try:
                pod.ask(spend, n)
            except BaseException as error:  # reported by the test, not lost in the thread
                failures.append(error)
                return
            n += 1

    threads = [threading.Thread(target=traffic, args=(pod,)) for pod in pods]
    for thread in threads:
        thread.start()
    try:
        poll(lambda: True if world.stored_requests() >= 12 else None, timeout=30, what="usage")
        world.operator.kill()  # SIGKILL: acknowledgements in flight are lost
        during = spend.requests
        poll(lambda: True if spend.requests >= during + 30 else None, timeout=30, what="traffic")
        world.operator.start()
        after = world.stored_requests()
        poll(
            lambda: True if world.stored_requests() >= after + 12 else None,
            timeout=60,
            what="usage after the restart",
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    world.assert_adds_up(spend)
