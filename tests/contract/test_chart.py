"""Contract tests of the Helm chart (charts/sidelight): lint, render, and what it promises.

`helm` is the e2e rig's cached binary (built once by e2e/build-binaries;
SIDELIGHT_E2E_BUILD=0 fails instead of building). Rendered objects of the
built-in kinds are read into the kubernetes client's model classes and
written back: a field the API does not know is lost on the way and fails
the test (the e2e tier also runs a server-side dry-run against a real API
server). Also checked: the chart's CRDs are crds/ (charts/sidelight/sync-crds),
its ClusterRole grants all of docs/operator.md's, the operator's pod is
hardened and excluded from injection, and the command lines it writes (the
operator's, and through the injection document every sidecar's) are ones
the `sidelight` parser accepts.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from kubernetes import client

from sidelight_cli.inject_cmd import default_document
from sidelight_cli.main import build_parser
from sidelight_operator.inject import build_injection_config

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "sidelight"
NAMESPACE = "sidelight-system"
GOLDEN = ROOT / "tests" / "operator" / "inject" / "golden"
Objects = list[dict[str, Any]]


@cache
def helm() -> Path:
    """The cached helm binary (built if missing, unless SIDELIGHT_E2E_BUILD=0)."""
    spec = importlib.util.spec_from_file_location(
        "sidelight_e2e_binaries", ROOT / "e2e" / "sidelight_e2e" / "binaries.py"
    )
    assert spec is not None
    assert spec.loader is not None
    binaries = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(binaries)
    built: dict[str, Path] = binaries.ensure_binaries(
        ["helm"], build=os.environ.get("SIDELIGHT_E2E_BUILD") != "0"
    )
    return built["helm"]


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    """helm with its caches in a throwaway place."""
    env = {**os.environ, "HELM_CACHE_HOME": "/tmp/sidelight-helm/cache"}
    env.update(
        HELM_CONFIG_HOME="/tmp/sidelight-helm/config", HELM_DATA_HOME="/tmp/sidelight-helm/data"
    )
    return subprocess.run(
        [str(helm()), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def render(*options: str) -> Objects:
    """`helm template` of the chart (release `sidelight`) as a list of objects."""
    result = run_helm("template", "sidelight", str(CHART), "-n", NAMESPACE, *options)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(objects: Objects, kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of `kind` (and `name`)."""
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def test_helm_lint_is_clean() -> None:
    """`helm lint --strict` passes, with the default values and with the options."""
    for options in (
        [],
        ["--set", "tls.certManager.enabled=true", "--set", "webhook.failurePolicy=Fail"],
    ):
        result = run_helm("lint", "--strict", str(CHART), *options)
        assert result.returncode == 0, result.stdout + result.stderr


def test_default_render_has_every_part() -> None:
    """Operator, RBAC, Service, certificate, injection config, webhook; no ServiceMonitor."""
    kinds = sorted(o["kind"] for o in render())
    assert kinds == sorted(
        [
            "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Service", "Deployment",
            "Secret", "ConfigMap", "MutatingWebhookConfiguration",
        ]
    )  # fmt: skip


_MODELS = {
    ("v1", "ServiceAccount"): client.V1ServiceAccount,
    ("v1", "Secret"): client.V1Secret,
    ("v1", "ConfigMap"): client.V1ConfigMap,
    ("v1", "Service"): client.V1Service,
    ("apps/v1", "Deployment"): client.V1Deployment,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): client.V1ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): client.V1ClusterRoleBinding,
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"): (
        client.V1MutatingWebhookConfiguration
    ),
}


@pytest.mark.parametrize(
    "options", [[], ["--set", "webhook.url=https://127.0.0.1:9443/mutate-pods"]]
)
def test_rendered_objects_fit_the_api_models(options: list[str]) -> None:
    """Each object survives a round trip through its client model unchanged."""
    api = client.ApiClient()
    for manifest in render(*options):
        model = _MODELS[(manifest["apiVersion"], manifest["kind"])]
        typed = api.deserialize(json.dumps(manifest), model.__name__, "application/json")
        back = api.sanitize_for_serialization(typed)  # type: ignore[no-untyped-call]
        assert _normal(back) == _normal(manifest), f"{manifest['kind']} has unknown fields"


def _normal(value: Any) -> Any:
    """JSON with ints written as the API reads them (IntOrString ports become strings)."""
    return json.loads(json.dumps(value, sort_keys=True))


def test_operator_pod_is_hardened_and_probed() -> None:
    """Non-root, read-only root, no capabilities, RuntimeDefault seccomp, resources, probes."""
    pod = one(render(), "Deployment")["spec"]["template"]
    spec = pod["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"]
    assert container["resources"]["limits"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["metadata"]["labels"]["sidelight.io/operator"] == "true"


def test_webhook_configuration() -> None:
    """Ignore by default, Fail on request, v1, no side effects, 10 s at most, exclusions."""
    objects = render()
    (webhook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert webhook["failurePolicy"] == "Ignore"
    assert webhook["sideEffects"] == "None"
    assert webhook["admissionReviewVersions"] == ["v1"]
    assert webhook["timeoutSeconds"] <= 10
    assert webhook["clientConfig"]["service"]["path"] == "/mutate-pods"
    secret = one(objects, "Secret")
    assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    excluded = webhook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["key"] == "kubernetes.io/metadata.name"
    assert {"kube-system", NAMESPACE} <= set(excluded["values"])
    assert webhook["objectSelector"]["matchExpressions"] == [
        {"key": "sidelight.io/operator", "operator": "DoesNotExist"}
    ]
    assert webhook["rules"] == [
        {
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
            "resources": ["pods"], "scope": "Namespaced",
        }
    ]  # fmt: skip
    (failing,) = one(render("--set", "webhook.failurePolicy=Fail"), "MutatingWebhookConfiguration")[
        "webhooks"
    ]
    assert failing["failurePolicy"] == "Fail"
    too_slow = run_helm("template", "x", str(CHART), "--set", "webhook.timeoutSeconds=11")
    assert too_slow.returncode != 0
    assert "at most 10" in too_slow.stderr


def test_certificate_covers_the_service() -> None:
    """The generated certificate names the Service; extra IPs are added."""
    secret = one(render("--set", "tls.extraIPs={127.0.0.1}"), "Secret")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"sidelight-operator.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_cert_manager_mode() -> None:
    """A Certificate (and the release's own CA) instead of a Secret; caBundle injected."""
    objects = render("--set", "tls.certManager.enabled=true")
    assert not [o for o in objects if o["kind"] == "Secret"]
    certificate = one(objects, "Certificate", "sidelight-operator")
    assert certificate["spec"]["secretName"] == "sidelight-operator-tls"
    assert certificate["spec"]["issuerRef"] == {"name": "sidelight-operator-ca", "kind": "Issuer"}
    assert one(objects, "Certificate", "sidelight-operator-ca")["spec"]["isCA"] is True
    configuration = one(objects, "MutatingWebhookConfiguration")
    annotation = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"]
    assert annotation == f"{NAMESPACE}/sidelight-operator"
    assert "caBundle" not in configuration["webhooks"][0]["clientConfig"]
    issued = render(
        "--set", "tls.certManager.enabled=true",
        "--set", "tls.certManager.issuerRef.name=corp-ca",
        "--set", "tls.certManager.issuerRef.kind=ClusterIssuer",
    )  # fmt: skip
    assert [o["kind"] for o in issued].count("Issuer") == 0
    issuer = one(issued, "Certificate")["spec"]["issuerRef"]
    assert issuer == {"name": "corp-ca", "kind": "ClusterIssuer"}


def test_service_monitor_only_where_the_api_exists() -> None:
    """Rendered where the ServiceMonitor kind (monitoring.coreos.com/v1) exists, not without."""
    objects = render("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
    monitor = one(objects, "ServiceMonitor")
    service = one(objects, "Service")
    ports = {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["port"] in ports
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert not [o for o in render() if o["kind"] == "ServiceMonitor"]


def _documented_rules() -> list[dict[str, Any]]:
    page = (ROOT / "docs" / "operator.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", page, re.S):
        document = yaml.safe_load(block)
        if isinstance(document, dict) and document.get("kind") == "ClusterRole":
            rules: list[dict[str, Any]] = document["rules"]
            return rules
    raise AssertionError("docs/operator.md has no ClusterRole")


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_cluster_role_grants_what_the_operator_documents() -> None:
    """Every (group, resource, verb) of docs/operator.md, and the webhook's reads; no '*'."""
    chart = _grants(one(render(), "ClusterRole")["rules"])
    missing = _grants(_documented_rules()) - chart
    assert not missing, f"the chart's ClusterRole lacks {sorted(missing)}"
    webhook_reads = {("", "namespaces", "get"), ("", "configmaps", "get"), ("", "secrets", "get")}
    assert webhook_reads <= chart
    assert not [g for g in chart if "*" in g]


def test_chart_crds_are_the_repository_crds() -> None:
    """charts/sidelight/crds/ holds exactly crds/*.yaml (run charts/sidelight/sync-crds)."""
    source = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert chart == source, "the chart's CRDs drifted: run charts/sidelight/sync-crds"


def _injection_document(*options: str) -> dict[str, Any]:
    config_map = one(render(*options), "ConfigMap", "sidelight-injection")
    document: dict[str, Any] = yaml.safe_load(config_map["data"]["config.yaml"])
    return document


@pytest.mark.parametrize(
    "options", [[], ["--set", "watchNamespaces={a,b}", "--set", "verbose=true"]]
)
def test_the_operator_command_parses(options: list[str]) -> None:
    """The Deployment's command and args are a valid `sidelight operator` command line."""
    (container,) = one(render(*options), "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["sidelight", "operator"]
    args = build_parser().parse_args(["operator", *container["args"]])
    assert args.webhook_listen == ("0.0.0.0", 9443)
    assert args.injection_config == Path("/etc/sidelight/injection/config.yaml")
    assert args.tls_cert == Path("/etc/sidelight/tls/tls.crt")
    assert args.control_plane_ca == Path("/etc/sidelight/tls/ca.crt")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/etc/sidelight/tls", "/etc/sidelight/injection"} <= mounts


def _sidecars() -> list[dict[str, Any]]:
    found = []
    for expected in sorted(GOLDEN.glob("*/expected.yaml")):
        pod = (yaml.safe_load(expected.read_text()) or {}).get("pod")
        spec = (pod or {}).get("spec", {})
        containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
        found += [c for c in containers if c["name"] == "sidelight"]
    return found


def test_every_injected_sidecar_command_parses() -> None:
    """Each sidecar of the golden corpus is a valid `sidelight sidecar` command line."""
    sidecars = _sidecars()
    assert len(sidecars) >= 5
    for sidecar in sidecars:
        assert sidecar["command"] == ["sidelight", "sidecar"]
        args = build_parser().parse_args(["sidecar", *sidecar["args"]])
        assert args.listen[0] == "127.0.0.1"
        assert str(args.token_file).startswith("/var/run/sidelight/identity/")


def test_the_injection_document_builds_a_config() -> None:
    """The chart's document is one `build_injection_config` accepts, with the chart's values."""
    document = _injection_document(
        "--set", "webhook.failurePolicy=Fail", "--set", "sidecar.otlpEndpoint=http://otel:4318"
    )  # fmt: skip
    config = build_injection_config(document, server_version=(1, 30), ca_bundle="PEM")
    assert config.fail_closed
    assert config.otlp_endpoint == "http://otel:4318"
    assert config.control_plane == "sidelight-operator.sidelight-system.svc:8443"
    assert "sidelight-system" in config.excluded_namespaces


def test_offline_defaults_are_the_charts() -> None:
    """`sidelight inject` without --config injects what a default install would."""
    document = _injection_document()
    assert {k: document[k] for k in default_document()} == default_document()
