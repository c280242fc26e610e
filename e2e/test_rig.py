"""Smoke tests that prove the e2e rig is a real control plane, not a stand-in."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sidelight_e2e.binaries import read_versions
from sidelight_e2e.cluster import Cluster, CommandError
from sidelight_e2e.kubelet import FakeKubelet
from sidelight_e2e.objects import to_dict, to_model
from sidelight_e2e.processes import poll
from sidelight_e2e.webhook import AdmissionServer, json_patch_response

pytestmark = pytest.mark.e2e

TESTDATA = Path(__file__).parent / "testdata"
VERSIONS = read_versions()


def _absent(read: Any, *args: str) -> bool | None:
    """For poll(): True once `read(*args)` answers 404."""
    try:
        read(*args)
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return None


def test_binaries_report_pinned_versions(cluster: Cluster) -> None:
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    if cluster.kind == "local":
        assert versions["serverVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    helm = cluster.helm("version", "--short").stdout
    assert helm.startswith(VERSIONS["HELM_VERSION"])


def test_crd_applied_with_kubectl_reads_back_through_the_client(
    cluster: Cluster, kube_client: client.ApiClient, namespace: str
) -> None:
    crd = "widgets.e2e.sidelight.dev"
    cluster.kubectl("apply", "-f", str(TESTDATA / "crd-widgets.yaml"))
    try:
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=30s")
        widget = {
            "apiVersion": "e2e.sidelight.dev/v1",
            "kind": "Widget",
            "metadata": {"name": "w1", "namespace": namespace},
            "spec": {"size": 3},
        }
        # kubectl's discovery cache may lag the new API by a moment.
        poll(
            lambda: cluster.kubectl("apply", "-f", "-", input_text=json.dumps(widget)),
            timeout=30,
            what="kubectl apply of a Widget",
        )
        custom = client.CustomObjectsApi(kube_client)
        stored = to_dict(
            kube_client,
            custom.get_namespaced_custom_object(
                "e2e.sidelight.dev", "v1", namespace, "widgets", "w1"
            ),
        )
        assert stored["spec"] == {"size": 3, "colour": "blue"}  # schema default applied
        invalid = {
            **widget,
            "metadata": {"name": "w2", "namespace": namespace},
            "spec": {"size": 0},
        }
        with pytest.raises(CommandError, match=r"spec\.size"):
            cluster.kubectl("apply", "-f", "-", input_text=json.dumps(invalid))
    finally:
        cluster.kubectl("delete", "crd", crd, "--wait=false")


def test_deployment_produces_a_pod(kube_client: client.ApiClient, namespace: str) -> None:
    labels = {"app": "web"}
    apps = client.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(
        namespace,
        to_model(
            kube_client,
            client.V1Deployment,
            {
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "web", "image": "example.invalid/web:0"}]},
                    },
                },
            },
        ),
    )
    core = client.CoreV1Api(kube_client)
    pods = poll(
        lambda: core.list_namespaced_pod(namespace, label_selector="app=web").items or None,
        timeout=60,
        what="the Deployment's Pod",
    )
    assert len(pods) == 1
    pod = to_dict(kube_client, pods[0])
    owner = pod["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet"
    replica_set = to_dict(kube_client, apps.read_namespaced_replica_set(owner["name"], namespace))
    assert replica_set["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert "nodeName" not in pod["spec"]  # no scheduler, no kubelet: it stays Pending


def test_namespace_deletion_completes(kube_client: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_client)
    name = f"doomed-{uuid.uuid4().hex[:6]}"
    core.create_namespace(to_model(kube_client, client.V1Namespace, {"metadata": {"name": name}}))
    config_map = {"metadata": {"name": "c"}, "data": {"a": "b"}}
    core.create_namespaced_config_map(name, to_model(kube_client, client.V1ConfigMap, config_map))
    core.delete_namespace(name)
    poll(lambda: _absent(core.read_namespace, name), timeout=60, what=f"namespace {name} to go")


def _token_review(
    api: client.ApiClient, token: str, audiences: list[str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    review = client.AuthenticationV1Api(api).create_token_review(
        to_model(api, client.V1TokenReview, {"spec": spec})
    )
    status: dict[str, Any] = to_dict(api, review)["status"]
    return status


def test_service_account_tokens_are_accepted(
    cluster: Cluster, kube_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_client)
    request = core.create_namespaced_service_account_token(
        "default",
        namespace,
        to_model(
            kube_client, client.AuthenticationV1TokenRequest, {"spec": {"expirationSeconds": 600}}
        ),
    )
    token = to_dict(kube_client, request)["status"]["token"]
    user = f"system:serviceaccount:{namespace}:default"
    status = _token_review(kube_client, token)
    assert status["authenticated"] is True
    assert status["user"]["username"] == user
    assert not _token_review(kube_client, token + "x").get("authenticated")

    # The API server authenticates requests that carry the token.
    with cluster.api_client(token=token) as as_account:
        whoami = client.AuthenticationV1Api(as_account).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
        assert to_dict(as_account, whoami)["status"]["userInfo"]["username"] == user

    # kube-controller-manager's token controller fills legacy token Secrets.
    legacy = {
        "metadata": {
            "name": "legacy",
            "annotations": {"kubernetes.io/service-account.name": "default"},
        },
        "type": "kubernetes.io/service-account-token",
    }
    core.create_namespaced_secret(namespace, to_model(kube_client, client.V1Secret, legacy))
    filled = poll(
        lambda: (core.read_namespaced_secret("legacy", namespace).data or {}).get("token"),
        timeout=30,
        what="the token controller to fill the Secret",
    )
    assert filled


def test_helm_installs_a_chart(
    cluster: Cluster, kube_client: client.ApiClient, namespace: str
) -> None:
    chart = str(TESTDATA / "charts" / "hello")
    cluster.helm("install", "hello", chart, "-n", namespace, "--set", "greeting=hi", "--wait")
    core = client.CoreV1Api(kube_client)
    config_map = to_dict(kube_client, core.read_namespaced_config_map("hello-greeting", namespace))
    assert config_map["data"] == {"greeting": "hi", "chart": "hello-0.1.0"}
    releases = json.loads(cluster.helm("list", "-n", namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in releases] == [("hello", "deployed")]
    cluster.helm("uninstall", "hello", "-n", namespace, "--wait")
    poll(
        lambda: _absent(core.read_namespaced_config_map, "hello-greeting", namespace),
        timeout=30,
        what="helm uninstall to delete the ConfigMap",
    )


def _add_label(request: dict[str, Any]) -> dict[str, Any]:
    labels = (request.get("object") or {}).get("metadata", {}).get("labels")
    if labels is None:
        patch = [
            {"op": "add", "path": "/metadata/labels", "value": {"sidelight.e2e/mutated": "yes"}}
        ]
    else:
        patch = [{"op": "add", "path": "/metadata/labels/sidelight.e2e~1mutated", "value": "yes"}]
    return json_patch_response(patch)


def test_api_server_calls_a_mutating_webhook(
    cluster: Cluster, kube_client: client.ApiClient, namespace: str
) -> None:
    if cluster.ca is None:
        pytest.skip("the webhook listens on 127.0.0.1, which a kind API server cannot reach")
    admission = client.AdmissionregistrationV1Api(kube_client)
    core = client.CoreV1Api(kube_client)
    name = f"e2e-{namespace}"
    with AdmissionServer(cluster.ca, _add_label) as server:
        admission.create_mutating_webhook_configuration(
            to_model(
                kube_client,
                client.V1MutatingWebhookConfiguration,
                {
                    "metadata": {"name": name},
                    "webhooks": [
                        {
                            "name": "label.e2e.sidelight.dev",
                            "clientConfig": {
                                "url": f"{server.url}/mutate",
                                "caBundle": server.ca_bundle,
                            },
                            "rules": [
                                {
                                    "apiGroups": [""],
                                    "apiVersions": ["v1"],
                                    "operations": ["CREATE"],
                                    "resources": ["configmaps"],
                                }
                            ],
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": namespace}
                            },
                            "failurePolicy": "Fail",
                            "sideEffects": "None",
                            "admissionReviewVersions": ["v1"],
                            "timeoutSeconds": 5,
                        }
                    ],
                },
            )
        )
        try:
            probe = to_model(
                kube_client, client.V1ConfigMap, {"metadata": {"name": "probe"}, "data": {"a": "b"}}
            )

            def mutated_dry_run() -> bool | None:
                created = core.create_namespaced_config_map(namespace, probe, dry_run="All")
                labels = to_dict(kube_client, created)["metadata"].get("labels", {})
                return True if labels.get("sidelight.e2e/mutated") else None

            # The API server picks up a new webhook configuration within moments.
            poll(mutated_dry_run, timeout=30, what="the webhook to take effect")
            real = {"metadata": {"name": "real", "labels": {"x": "y"}}}
            created = core.create_namespaced_config_map(
                namespace, to_model(kube_client, client.V1ConfigMap, real)
            )
            assert to_dict(kube_client, created)["metadata"]["labels"] == {
                "x": "y",
                "sidelight.e2e/mutated": "yes",
            }
            seen = [r for r in server.requests if r["name"] == "real"]
            assert seen
            assert seen[0]["namespace"] == namespace
            assert seen[0]["kind"] == {"group": "", "version": "v1", "kind": "ConfigMap"}
        finally:
            admission.delete_mutating_webhook_configuration(name)


SCRIPT = """
import json, os, pathlib, sys
print(json.dumps({
    "key": os.environ["OPENAI_API_KEY"],
    "prefixed": os.environ["LLM_OPENAI_API_KEY"],
    "pod": os.environ["POD_NAME"],
    "token": pathlib.Path(os.environ["TOKEN_FILE"]).read_text(),
    "namespace": pathlib.Path(sys.argv[1]).read_text(),
    "ca": pathlib.Path(sys.argv[2]).read_text(),
}))
"""


def test_fake_kubelet_runs_a_pod_container(
    cluster: Cluster, kube_client: client.ApiClient, fake_kubelet: FakeKubelet, namespace: str
) -> None:
    core = client.CoreV1Api(kube_client)
    secret = {"metadata": {"name": "llm-keys"}, "stringData": {"OPENAI_API_KEY": "sk-e2e"}}
    core.create_namespaced_secret(namespace, to_model(kube_client, client.V1Secret, secret))
    account = "/var/run/secrets/kubernetes.io/serviceaccount"
    pod = core.create_namespaced_pod(
        namespace,
        to_model(
            kube_client,
            client.V1Pod,
            {
                "metadata": {"name": "app"},
                "spec": {
                    "containers": [
                        {
                            "name": "sidecar",
                            "image": "example.invalid/sidecar:0",
                            "command": ["python", "-c", SCRIPT],
                            "args": [f"{account}/namespace", f"{account}/ca.crt"],
                            "envFrom": [{"secretRef": {"name": "llm-keys"}, "prefix": "LLM_"}],
                            "env": [
                                {
                                    "name": "OPENAI_API_KEY",
                                    "valueFrom": {
                                        "secretKeyRef": {
                                            "name": "llm-keys",
                                            "key": "OPENAI_API_KEY",
                                        }
                                    },
                                },
                                {
                                    "name": "POD_NAME",
                                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                                },
                                {"name": "TOKEN_FILE", "value": "/var/run/sidelight/token"},
                            ],
                            "volumeMounts": [
                                {"name": "sidelight-token", "mountPath": "/var/run/sidelight"}
                            ],
                        }
                    ],
                    "volumes": [
                        {
                            "name": "sidelight-token",
                            "projected": {
                                "sources": [
                                    {
                                        "serviceAccountToken": {
                                            "audience": "sidelight-e2e",
                                            "expirationSeconds": 600,
                                            "path": "token",
                                        }
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
        ),
    )
    # The ServiceAccount admission plugin added the kube-api-access volume.
    mounts = to_dict(kube_client, pod)["spec"]["containers"][0]["volumeMounts"]
    assert any(m["mountPath"] == account for m in mounts)

    running = fake_kubelet.run(pod, "sidecar")
    assert running.wait(timeout=30) == 0, running.output()
    seen = json.loads(running.output())
    assert seen["key"] == "sk-e2e"
    assert seen["prefixed"] == "sk-e2e"
    assert seen["pod"] == "app"
    assert seen["namespace"] == namespace
    assert seen["ca"] == cluster.ca_path.read_text()

    review = _token_review(kube_client, seen["token"], ["sidelight-e2e"])
    assert review["authenticated"] is True
    assert review["audiences"] == ["sidelight-e2e"]
    assert review["user"]["username"] == f"system:serviceaccount:{namespace}:default"
    assert review["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["app"]
    assert not _token_review(kube_client, seen["token"]).get("authenticated")  # wrong audience
