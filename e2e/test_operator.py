"""The operator on the local control plane, with sidecars the fake kubelet runs.

The operator runs as `python -m sidelight_operator` in its own process, as a
ServiceAccount with the documented ClusterRole, watching the test's
namespace, with its ControlPlane on loopback behind TLS. Each sidecar is the
`sidelight` container of a real (Pending) Pod, with a real projected token;
requests go through it with the `openai` SDK to the fake provider. The
harness is test_operator_rig.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import openai
import pytest
from kubernetes import client
from test_operator_rig import (
    AUDIENCE,
    ROOT,
    OperatorProcess,
    Rig,
    Status,
    conditions,
    operator_account,
    pod_token,
    programmed,
)

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.objects import to_model
from sidelight_e2e.processes import poll
from sidelight_fake_provider.server import FakeProviderThread
from sidelight_proto.v1 import control_plane_pb2


@pytest.fixture(scope="module")
def sidelight_crds(cluster: Cluster) -> None:
    """Every CRD of crds/, established: the operator lists each kind it watches before serving.

    Left installed: other tests of the run use them.
    """
    names = cluster.kubectl("apply", "-f", str(ROOT / "crds"), "-o", "name").stdout.split()
    cluster.kubectl("wait", "--for=condition=Established", *names)


@pytest.fixture(scope="module")
def operator_kubeconfig(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The operator's kubeconfig: its own ServiceAccount, the documented RBAC."""
    with operator_account(cluster, tmp_path_factory.mktemp("operator")) as path:
        yield path


@pytest.fixture
def rig(
    cluster: Cluster,
    kube_client: client.ApiClient,
    fake_kubelet: FakeKubelet,
    namespace: str,
    sidelight_crds: None,
    operator_kubeconfig: Path,
    tmp_path: Path,
) -> Iterator[Rig]:
    """The namespace with Secret `openai` and ConfigMap `sidelight-ca`; an operator, not started."""
    core = client.CoreV1Api(kube_client)
    secret = {"metadata": {"name": "openai"}, "stringData": {"api-key": "sk-e2e-1"}}
    core.create_namespaced_secret(namespace, to_model(kube_client, client.V1Secret, secret))
    operator = OperatorProcess(operator_kubeconfig, tmp_path, (namespace,))
    ca = {"metadata": {"name": "sidelight-ca"}, "data": {"ca.crt": operator.ca.cert_pem.decode()}}
    core.create_namespaced_config_map(namespace, to_model(kube_client, client.V1ConfigMap, ca))
    with FakeProviderThread() as provider:
        try:
            yield Rig(cluster, kube_client, fake_kubelet, namespace, provider, operator)
        finally:
            operator.stop()
            print(f"----- operator log (tail) -----\n{operator.log_tail()}")  # shown on failure


def test_a_route_reaches_the_sidecar_and_its_status_follows(rig: Rig) -> None:
    # Evaluated first (by name), but it selects other pods: it must not reach this one.
    elsewhere = rig.route("a-route-for-other-pods", default="gpt-4o-mini")
    elsewhere["spec"]["podSelector"] = {"matchLabels": {"app": "other"}}
    rig.apply(rig.route("assistant", default="gpt-4o"), elsewhere)
    rig.operator.start()
    sidecar = rig.start_sidecar("app")
    assert sidecar.served_model("assistant") == "gpt-4o"
    assert sidecar.served_model("cheap") == "gpt-4o-mini"
    sent = rig.provider.requests[-1]
    assert sent.body["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == "Bearer sk-e2e-1"  # the Secret's key
    rig.wait_status("assistant", programmed(1), "assistant Accepted and Programmed")
    other = rig.wait_status("a-route-for-other-pods", lambda s: bool(conditions(s)), "status")
    assert conditions(other)["Programmed"] == ("False", "NoSidecars")
    table = rig.cluster.kubectl("get", "llmroutes", "-n", rig.namespace).stdout.split()
    assert table[:5] == ["NAME", "ACCEPTED", "PROGRAMMED", "SYNCED", "AGE"]
    assert table[5:9] == ["a-route-for-other-pods", "True", "False", "0"]
    assert table[10:14] == ["assistant", "True", "True", "1"]

    started = time.monotonic()
    rig.apply(rig.route("assistant", default="gpt-4o-mini"))
    applied = time.monotonic() - started
    poll(
        lambda: True if sidecar.served_model("assistant") == "gpt-4o-mini" else None,
        timeout=10,
        interval=0.02,
        what="the edited route to be served",
    )
    elapsed = time.monotonic() - started
    print(
        f"kubectl apply -> served by the sidecar: {elapsed * 1000:.0f} ms "
        f"(kubectl itself: {applied * 1000:.0f} ms)"
    )
    assert elapsed < 2.0
    rig.wait_status("assistant", programmed(2), "generation 2 Programmed")


def test_a_route_that_fails_compile_is_rejected_and_the_others_keep_working(rig: Rig) -> None:
    broken = rig.route("broken", default="gpt-4o")
    broken["spec"]["backends"][1]["credentials"]["secretRef"]["key"] = "missing"
    rig.apply(rig.route("assistant", default="gpt-4o"), broken)
    rig.operator.start()
    sidecar = rig.start_sidecar()
    assert sidecar.served_model("assistant") == "gpt-4o"
    status = rig.wait_status("broken", lambda s: bool(conditions(s)), "broken's conditions")
    invalid = {"Accepted": ("False", "Invalid"), "Programmed": ("False", "Invalid")}
    assert conditions(status) == invalid
    message = status["conditions"][0]["message"]
    assert message == (
        f"spec.backends[1].credentials.secretRef: Secret {rig.namespace}/openai "
        "has no key 'missing'"
    )
    rig.wait_status("assistant", programmed(1), "the good route Programmed")
    events = rig.cluster.kubectl(
        "get", "events", "-n", rig.namespace,
        "--field-selector", "involvedObject.name=broken", "-o", "json",
    )  # fmt: skip
    seen = [(e["type"], e["reason"], e["message"]) for e in json.loads(events.stdout)["items"]]
    assert seen == [("Warning", "Invalid", message)]

    # The key arrives: the Secret watch recompiles, and the route is served too.
    patch = json.dumps({"stringData": {"missing": "sk-e2e-2"}})
    rig.cluster.kubectl("patch", "secret", "openai", "-n", rig.namespace, "-p", patch)
    rig.wait_status("broken", programmed(1), "broken fixed and Programmed")
    assert sidecar.served_model("assistant") == "gpt-4o"


def test_sidecars_outlive_the_operator_and_resync_when_it_is_back(rig: Rig) -> None:
    rig.apply(rig.route("assistant", default="gpt-4o"))
    rig.operator.start()
    sidecar = rig.start_sidecar()
    rig.wait_status("assistant", programmed(1), "assistant Programmed")
    rig.operator.kill()
    assert sidecar.served_model("assistant") == "gpt-4o"
    sidecar.restart()  # its emptyDir keeps the last snapshot; no operator to ask
    poll(lambda: sidecar.served_model("assistant"), timeout=30, what="the restarted sidecar")
    rig.apply(rig.route("assistant", default="gpt-4o-mini"))
    assert sidecar.served_model("assistant") == "gpt-4o"  # nobody to tell it yet
    rig.operator.start()
    poll(
        lambda: True if sidecar.served_model("assistant") == "gpt-4o-mini" else None,
        timeout=60,  # the sidecar reconnects with backoff
        what="the edit made while the operator was down",
    )
    rig.wait_status("assistant", programmed(2), "generation 2 Programmed after the restart")


def test_a_sidecar_gets_nothing_of_another_namespace(
    rig: Rig, kube_client: client.ApiClient
) -> None:
    core = client.CoreV1Api(kube_client)
    other = f"{rig.namespace[:50]}-b"
    rig.cluster.kubectl("create", "namespace", other)
    try:
        poll(
            lambda: core.read_namespaced_service_account("default", other),
            timeout=30,
            what=f"ServiceAccount {other}/default",
        )
        secret = {"metadata": {"name": "openai"}, "stringData": {"api-key": "sk-other"}}
        core.create_namespaced_secret(other, to_model(kube_client, client.V1Secret, secret))
        theirs = rig.route("theirs", default="gpt-4o")
        theirs["metadata"]["namespace"] = other
        rig.apply(rig.route("ours", default="gpt-4o"), theirs)
        rig.operator.namespaces = (rig.namespace, other)
        rig.operator.start()
        container = {"name": "c", "image": "example.invalid/c:0"}
        manifest = {"metadata": {"name": "intruder"}, "spec": {"containers": [container]}}
        pod = core.create_namespaced_pod(other, to_model(kube_client, client.V1Pod, manifest))
        token = pod_token(kube_client, pod, AUDIENCE)

        forged = control_plane_pb2.Node(namespace=rig.namespace, pod="app")
        refused = rig.operator.first_answer(token, forged)
        assert isinstance(refused, grpc.RpcError)
        assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.details() == (
            f"node claims namespace '{rig.namespace}' but its token belongs to {other}/intruder"
        )

        own = rig.operator.first_answer(token, control_plane_pb2.Node(namespace=other))
        assert isinstance(own, control_plane_pb2.SnapshotResponse)
        routes = own.snapshot.route_sets
        assert [(r.source.namespace, r.source.name) for r in routes] == [(other, "theirs")]
        assert {b.credential.value for r in routes for b in r.backends} == {b"sk-other"}

        for bad, reason in (
            (pod_token(kube_client, pod, "https://kubernetes.default.svc"), "token rejected"),
            (pod_token(kube_client, pod, AUDIENCE, bound=False), "token is not bound to a pod"),
        ):
            answer = rig.operator.first_answer(bad, control_plane_pb2.Node())
            assert isinstance(answer, grpc.RpcError)
            assert answer.code() == grpc.StatusCode.UNAUTHENTICATED
            assert (answer.details() or "").startswith(reason)
    finally:
        rig.cluster.kubectl("delete", "namespace", other, "--wait=false")


def guardrail(name: str, app: str, *rules: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A Guardrail for the pods labelled app=`app`."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "Guardrail",
        "metadata": {"name": name},
        "spec": {"podSelector": {"matchLabels": {"app": app}}, "rules": list(rules), **spec},
    }


def wait_guardrail(rig: Rig, name: str, want: Callable[[Status], bool], what: str) -> Status:
    """Poll the Guardrail's status until `want` holds."""

    def check() -> Status | None:
        found = rig.cluster.kubectl("get", "guardrail", name, "-n", rig.namespace, "-o", "json")
        status: Status = json.loads(found.stdout).get("status") or {}
        return status if want(status) else None

    return poll(check, timeout=30, what=what)


def ask(port: int, prompt: str) -> str:
    """Send `prompt` through the sidecar with the openai SDK; the answer's text."""
    url = f"http://127.0.0.1:{port}/v1"
    with openai.OpenAI(base_url=url, api_key="placeholder", max_retries=0) as sdk:
        answer = sdk.chat.completions.create(
            model="assistant", messages=[{"role": "user", "content": prompt}], timeout=10
        )
    return answer.choices[0].message.content or ""


CODENAMES = {"name": "codenames", "action": "block", "denyList": {"phrases": ["project falcon"]}}
INJECTION = {"name": "injection", "action": "block", "promptInjection": {}}


def test_a_guardrail_reaches_the_sidecar_and_its_status_follows(rig: Rig) -> None:
    rig.apply(rig.route("assistant", default="gpt-4o"))
    rig.operator.start()
    sidecar = rig.start_sidecar("app")
    # Applied while the operator runs: the watch brings them, not the first list.
    rig.apply(
        guardrail("codenames", "app", CODENAMES, INJECTION),
        guardrail("for-other-pods", "other", INJECTION),
    )
    status = wait_guardrail(rig, "codenames", programmed(1), "codenames Programmed")
    assert status["rules"] == 2
    other = wait_guardrail(rig, "for-other-pods", lambda s: bool(conditions(s)), "its status")
    assert conditions(other)["Programmed"] == ("False", "NoSidecars")
    table = rig.cluster.kubectl("get", "guardrails", "-n", rig.namespace).stdout.split()
    assert table[:8] == [
        "NAME", "STAGE", "MODE", "RULES", "ACCEPTED", "PROGRAMMED", "SYNCED", "AGE",
    ]  # fmt: skip
    assert table[8:15] == ["codenames", "input", "enforce", "2", "True", "True", "1"]
    assert table[16:23] == ["for-other-pods", "input", "enforce", "1", "True", "False", "0"]

    calls = len(rig.provider.requests)
    with pytest.raises(openai.BadRequestError) as blocked:
        ask(sidecar.port, "What is the status of Project  FALCON?")
    assert blocked.value.code == "guardrail_blocked"
    headers = blocked.value.response.headers
    assert headers["x-sidelight-guardrail"] == f"{rig.namespace}/codenames"
    assert headers["x-sidelight-guardrail-rule"] == "codenames"
    assert len(rig.provider.requests) == calls  # the provider was not called
    assert ask(sidecar.port, "What is the status of the shop?")

    # Audit mode: the same prompt passes, once the sidecar serves generation 2.
    rig.apply(guardrail("codenames", "app", CODENAMES, INJECTION, mode="audit"))
    wait_guardrail(rig, "codenames", programmed(2), "generation 2 Programmed")
    assert ask(sidecar.port, "What is the status of Project  FALCON?")


def test_a_guardrail_that_fails_compile_is_rejected_and_the_sidecar_keeps_serving(
    rig: Rig,
) -> None:
    bad_regex = {"name": "ids", "action": "redact", "pattern": {"regexes": ["EMP-(\\d+"]}}
    rig.apply(rig.route("assistant", default="gpt-4o"), guardrail("broken", "app", bad_regex))
    rig.operator.start()
    sidecar = rig.start_sidecar("app")
    status = wait_guardrail(rig, "broken", lambda s: bool(conditions(s)), "broken's conditions")
    assert conditions(status) == {
        "Accepted": ("False", "Invalid"),
        "Programmed": ("False", "Invalid"),
    }
    message = (
        "spec.rules[0].pattern.regexes[0]: invalid regular expression: "
        "missing ), unterminated subpattern at position 4"
    )
    assert status["conditions"][0]["message"] == message
    events = rig.cluster.kubectl(
        "get", "events", "-n", rig.namespace,
        "--field-selector", "involvedObject.name=broken", "-o", "json",
    )  # fmt: skip
    seen = [(e["type"], e["reason"], e["message"]) for e in json.loads(events.stdout)["items"]]
    assert seen == [("Warning", "Invalid", message)]
    rig.wait_status("assistant", programmed(1), "the route Programmed")
    assert sidecar.served_model("assistant") == "gpt-4o"
