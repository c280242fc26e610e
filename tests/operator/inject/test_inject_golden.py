"""The injection golden corpus (STYLE principle 6), through every path that injects.

A case is a folder of golden/ with

- `pod.yaml`: the pod as the webhook receives it;
- `namespace.yaml` (optional): its Namespace; default: `shop`, opted in;
- `config.yaml` (optional): how the case runs: `kubernetesVersion` (default
  "1.37"), `noCA: true` (default: the test CA), `injection` (overrides of the
  chart document in BASE_DOCUMENT), `envSources` (`kind/name: [keys]`, or
  null for a source that does not exist; a source not listed is unknown);
- `expected.yaml`: `skipped: <reason>`, or `pod:` and maybe `warnings:`.

No other file may be there, and a case without expected.yaml fails. The
corpus drives the pure `inject_pod`, the webhook's `PodInjector` (its JSON
Patch applied to the pod must give the expected pod) and `sidelight inject`.
Regenerate with `UPDATE_GOLDEN=1 pytest tests/operator/inject` and review
the diff.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidelight_cli.inject_cmd import add_inject_command, dump_yaml
from sidelight_operator.inject import (
    InjectionConfig,
    InjectionResult,
    build_injection_config,
    inject_pod,
)
from sidelight_operator.inject.env import EnvSourceRef
from sidelight_operator.inject.namespaces import NamespaceIndex
from sidelight_operator.inject.patch import Patch
from sidelight_operator.inject.webhook import PodInjector

GOLDEN = Path(__file__).parent / "golden"
CASE_FILES = {"pod.yaml", "namespace.yaml", "config.yaml", "expected.yaml"}
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
TEST_CA = "-----BEGIN CERTIFICATE-----\nMIIBsidelightGoldenTestCA\n-----END CERTIFICATE-----\n"
BASE_DOCUMENT: dict[str, Any] = {
    "image": "ghcr.io/sidelight/sidecar:0.1.0",
    "controlPlane": "sidelight-operator.sidelight-system.svc:8443",
    "excludedNamespaces": ["sidelight-system"],
}
DEFAULT_NAMESPACE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Namespace",
    "metadata": {"name": "shop", "annotations": {"sidelight.io/inject": "enabled"}},
}


@dataclass
class Case:
    """One golden case, loaded."""

    name: str
    pod: dict[str, Any]
    namespace: dict[str, Any]
    document: dict[str, Any]
    kubernetes_version: str
    ca_bundle: str | None
    env_sources: dict[EnvSourceRef, frozenset[str] | None] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The case's folder."""
        return GOLDEN / self.name

    @property
    def config(self) -> InjectionConfig:
        """The InjectionConfig the case runs with."""
        major, minor = self.kubernetes_version.split(".")
        return build_injection_config(
            self.document, server_version=(int(major), int(minor)), ca_bundle=self.ca_bundle
        )

    def expected(self) -> dict[str, Any]:
        """The parsed expected.yaml."""
        document: dict[str, Any] = yaml.safe_load((self.folder / "expected.yaml").read_text())
        return document


def cases() -> list[str]:
    """The case folders, sorted."""
    return sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text()) if path.exists() else None


def load_case(name: str) -> Case:
    """Read a case folder."""
    folder = GOLDEN / name
    options = _load(folder / "config.yaml") or {}
    sources: dict[EnvSourceRef, frozenset[str] | None] = {}
    for ref, keys in (options.get("envSources") or {}).items():
        kind, _, source = ref.partition("/")
        sources[(kind, source)] = None if keys is None else frozenset(keys)
    return Case(
        name=name,
        pod=_load(folder / "pod.yaml"),
        namespace=_load(folder / "namespace.yaml") or copy.deepcopy(DEFAULT_NAMESPACE),
        document={**BASE_DOCUMENT, **(options.get("injection") or {})},
        kubernetes_version=str(options.get("kubernetesVersion", "1.37")),
        ca_bundle=None if options.get("noCA") else TEST_CA,
        env_sources=sources,
    )


def render(result: InjectionResult) -> str:
    """The expected.yaml of a result."""
    if result.skipped_reason is not None:
        return dump_yaml([{"skipped": result.skipped_reason}])
    document: dict[str, Any] = {"pod": result.pod}
    if result.warnings:
        document["warnings"] = list(result.warnings)
    return dump_yaml([document])


def _parent(document: Any, pointer: str) -> tuple[Any, str]:
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document, tokens[-1]


def apply_patch(document: Any, patch: Patch) -> Any:
    """RFC 6902 add, remove and replace (all the injection emits) on a copy of `document`."""
    result = copy.deepcopy(document)
    for op in patch:
        if op["path"] == "":
            result = copy.deepcopy(op["value"])
            continue
        parent, key = _parent(result, op["path"])
        value = copy.deepcopy(op.get("value"))
        if isinstance(parent, list):
            index = len(parent) if key == "-" else int(key)
            if op["op"] == "add":
                parent.insert(index, value)
            elif op["op"] == "remove":
                del parent[index]
            else:
                parent[index] = value
        elif op["op"] == "remove":
            del parent[key]
        elif op["op"] == "replace" and key not in parent:
            raise KeyError(f"replace of a missing member {op['path']}")
        else:
            parent[key] = value
    return result


def test_corpus_has_no_orphans() -> None:
    """Every entry is a case folder with pod.yaml, expected.yaml and known files only."""
    stray = [p.name for p in GOLDEN.iterdir() if not p.is_dir()]
    assert not stray, f"files outside a case folder: {stray}"
    assert len(cases()) >= 10
    for case in cases():
        present = {p.name for p in (GOLDEN / case).iterdir()}
        assert present <= CASE_FILES, f"{case}: unexpected files {sorted(present - CASE_FILES)}"
        assert "pod.yaml" in present, f"{case}: no pod.yaml"
        assert UPDATE or "expected.yaml" in present, f"{case}: no expected.yaml (UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("name", cases())
def test_inject_pod_golden(name: str) -> None:
    """inject_pod gives the expected pod; its patch makes it; a second run changes nothing."""
    case = load_case(name)
    result = inject_pod(case.pod, case.namespace, case.config, env_sources=case.env_sources)
    actual = render(result)
    expected_path = case.folder / "expected.yaml"
    if UPDATE:
        expected_path.write_text(actual)
    assert actual == expected_path.read_text()
    assert apply_patch(case.pod, result.patch) == result.pod
    if result.skipped_reason is None:
        again = inject_pod(result.pod, case.namespace, case.config, env_sources=case.env_sources)
        assert again.skipped_reason == "already injected (annotation sidelight.io/injected)"
        assert again.patch == []
    else:
        assert result.patch == []
        assert result.pod == case.pod


def _injector(case: Case) -> PodInjector:
    index = NamespaceIndex()
    index.replace([case.namespace])

    async def no_namespace_read(name: str) -> dict[str, Any] | None:
        raise AssertionError(f"the index holds {name}; no GET expected")

    async def keys(namespace: str, ref: EnvSourceRef) -> frozenset[str] | None:
        assert namespace == case.namespace["metadata"]["name"]
        if ref not in case.env_sources:
            raise PermissionError(f"{ref} is not readable in this case")
        keys: frozenset[str] | None = case.env_sources[ref]
        return keys

    return PodInjector(case.config, index, no_namespace_read, keys)


@pytest.mark.parametrize("name", cases())
async def test_webhook_golden(name: str) -> None:
    """The webhook's JSON Patch, applied as the API server does, gives the expected pod."""
    case = load_case(name)
    request = {
        "uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "namespace": case.namespace["metadata"]["name"],
        "object": case.pod,
    }
    response = await _injector(case).review(request)
    expected = case.expected()
    assert response["allowed"] is True
    if "skipped" in expected:
        assert "patch" not in response
        return
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert apply_patch(case.pod, patch) == expected["pod"]
    assert response.get("warnings", []) == [f"sidelight: {w}" for w in expected.get("warnings", [])]


def _cli_runs_like_the_webhook(case: Case) -> bool:
    # Offline, every namespace counts as opted in, and a source missing from the input is
    # unknown (it cannot be told from one that does not exist).
    opted_in = case.namespace["metadata"].get("annotations", {}).get("sidelight.io/inject")
    return opted_in == "enabled" and None not in case.env_sources.values()


@pytest.mark.parametrize("name", [n for n in cases() if _cli_runs_like_the_webhook(load_case(n))])
def test_cli_golden(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`sidelight inject` writes the expected pod (or the pod as it was, with the reason)."""
    case = load_case(name)
    sources = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap" if kind == "configmap" else "Secret",
            "metadata": {"name": source, "namespace": case.pod["metadata"]["namespace"]},
            "data": dict.fromkeys(sorted(keys or ()), "x"),
        }
        for (kind, source), keys in case.env_sources.items()
    ]
    (tmp_path / "in.yaml").write_text(dump_yaml([*sources, case.pod]))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(case.document))
    argv = ["inject", "-f", str(tmp_path / "in.yaml"), "--config", str(tmp_path / "config.yaml")]
    argv += ["--kubernetes-version", case.kubernetes_version]
    if case.ca_bundle is not None:
        (tmp_path / "ca.crt").write_text(case.ca_bundle)
        argv += ["--ca-file", str(tmp_path / "ca.crt")]
    parser = argparse.ArgumentParser()
    add_inject_command(parser.add_subparsers())
    args = parser.parse_args(argv)
    assert args.run(args) == 0
    out, err = capsys.readouterr()
    pod = list(yaml.safe_load_all(out))[-1]
    expected = case.expected()
    if "skipped" in expected:
        assert pod == case.pod
        assert f"not injected: {expected['skipped']}" in err
    else:
        assert pod == expected["pod"]
        for warning in expected.get("warnings", []):
            assert warning in err
