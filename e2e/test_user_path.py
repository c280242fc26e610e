"""The whole user path on the local control plane, as docs/install.md tells it.

1. `helm install` the chart; its operator runs on the rig (test_injection_rig.py).
2. `kubectl apply` the seed's LLMRoute (crds/examples/llmroute-assistant.yaml,
   its endpoints pointed at two fake providers) and its Secrets.
3. An annotated namespace and a Deployment of an "app".
4. The Pod the controller-manager makes carries the injected sidecar.
5. The fake kubelet starts the sidecar container exactly as the pod spec says
   (command, args, downward-API env, projected token and CA, emptyDir), and it
   fetches its snapshot from the operator.
6. It then starts the app container, whose command uses the official `openai`
   and `anthropic` SDKs with nothing but the environment the pod spec gave it:
   each request reaches the fake provider of the backend the seed's rules
   name, with the key only the sidecar holds (the providers refuse any other).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from test_injection_rig import (
    ROOT,
    SidelightInstall,
    answers_ok,
    apply,
    containers,
    deployment,
    install_sidelight,
    pod_of,
)

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.processes import poll
from sidelight_fake_provider.server import FakeProviderThread

OPENAI_KEY = "sk-openai-only-the-sidecar-knows"
ANTHROPIC_KEY = "sk-ant-only-the-sidecar-knows"
# The app: the SDKs configured by the environment alone (OPENAI_BASE_URL,
# OPENAI_API_KEY, ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY), one request per rule.
APP = """
import json, anthropic, openai

def ask(headers, text):
    with openai.OpenAI(max_retries=0) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="gpt-4", messages=[{"role": "user", "content": text}],
            extra_headers=headers, timeout=20)
    raw.parse()
    return raw.headers["x-sidelight-backend"]

served = {
    "summary": ask({"x-sidelight-task-type": "summarization"}, "Summarize: the sky is blue."),
    "low-priority chat": ask(
        {"x-sidelight-task-type": "general_chat", "x-sidelight-priority": "low"}, "hi"),
    "anything else": ask({}, "hello"),
}
with anthropic.Anthropic(max_retries=0) as sdk:
    raw = sdk.messages.with_raw_response.create(
        model="claude-3-haiku-20240307", max_tokens=50,
        messages=[{"role": "user", "content": "hello"}], timeout=20)
raw.parse()
served["anthropic sdk"] = raw.headers["x-sidelight-backend"]
print("SERVED " + json.dumps(served), flush=True)
"""


@pytest.fixture(scope="module")
def sidelight(
    cluster: Cluster, kube_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidelightInstall]:
    """The chart, installed, with its operator running on loopback."""
    if cluster.kind == "kind":
        pytest.skip("a kind API server cannot call a webhook on the test's 127.0.0.1")
    with install_sidelight(cluster, kube_client, tmp_path_factory.mktemp("sidelight")) as install:
        yield install


def seed_route(anthropic_url: str, openai_url: str) -> dict[str, Any]:
    """The seed's LLMRoute with its endpoints at the fake providers."""
    route: dict[str, Any] = yaml.safe_load(
        (ROOT / "crds" / "examples" / "llmroute-assistant.yaml").read_text()
    )
    del route["metadata"]["namespace"]
    for backend in route["spec"]["backends"]:
        url = anthropic_url if backend["provider"] == "anthropic" else f"{openai_url}/v1"
        backend["endpoints"] = [{**e, "url": url} for e in backend["endpoints"]]
    return route


def secret(name: str, key: str) -> dict[str, Any]:
    """A Secret with one `api-key`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {"api-key": key},
    }


def test_an_app_reaches_the_seed_backends_through_its_injected_sidecar(
    sidelight: SidelightInstall, fake_kubelet: FakeKubelet
) -> None:
    """helm install, LLMRoute, annotated namespace, Deployment: the SDKs just work."""
    with (
        FakeProviderThread("anthropic", api_keys={"anthropic": ANTHROPIC_KEY}) as anthropic,
        FakeProviderThread("openai", api_keys={"openai": OPENAI_KEY}) as openai,
    ):
        namespace = sidelight.create_namespace(opt_in="enabled")
        apply(
            sidelight.cluster,
            namespace,
            secret("anthropic", ANTHROPIC_KEY),
            secret("openai", OPENAI_KEY),
            seed_route(anthropic.url, openai.url),
            deployment("chat", {"app": "chat"}, ["python", "-c", APP]),
        )
        pod = pod_of(sidelight.api, namespace, "app=chat")
        assert list(containers(pod)) == ["sidelight", "app"]

        proxy = fake_kubelet.run(pod, "sidelight")
        poll(
            lambda: answers_ok(f"http://127.0.0.1:{sidelight.sidecar_port}/readyz"),
            timeout=30,
            what="the sidecar's first snapshot (/readyz)",
            alive=proxy.process.check_alive,
        )
        app = fake_kubelet.run(pod, "app")
        assert app.wait(timeout=60) == 0, app.output()

        served = json.loads(app.output().split("SERVED ", 1)[1])
        assert served == {
            "summary": "claude-3-haiku",
            "low-priority chat": "gpt-3.5-turbo",
            "anything else": "gpt-4",
            "anthropic sdk": "gpt-4",
        }
        assert [r.body["model"] for r in anthropic.requests] == ["claude-3-haiku-20240307"]
        assert {r.credentials["x-api-key"] for r in anthropic.requests} == {ANTHROPIC_KEY}
        assert [r.body["model"] for r in openai.requests] == ["gpt-3.5-turbo", "gpt-4", "gpt-4"]
        assert {r.credentials["authorization"] for r in openai.requests} == {f"Bearer {OPENAI_KEY}"}

    # The app was given the sidecar's address and a placeholder, never a key or the token.
    assert app.env["OPENAI_API_KEY"] == app.env["ANTHROPIC_API_KEY"] == "sidelight-placeholder"
    assert not [v for v in app.env.values() if OPENAI_KEY in v or ANTHROPIC_KEY in v]
    assert not [path for path in app.mounts if path.startswith("/var/run/sidelight")]
    assert str(proxy.host_path("/var/run/sidelight/identity/token")) in " ".join(proxy.argv)
