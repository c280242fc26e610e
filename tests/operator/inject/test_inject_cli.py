"""`sidelight inject`: manifests in, the same manifests with the sidecar out."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidelight_cli.inject_cmd import add_inject_command, dump_yaml


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_inject_command(parser.add_subparsers())
    args = parser.parse_args(["inject", *argv])
    result: int = args.run(args)
    return result


def workload(kind: str, name: str, template: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": template}
    if kind == "CronJob":
        spec = {"schedule": "@daily", "jobTemplate": {"spec": spec}}
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {
        "containers": [
            {"name": "app", "image": "web:1", "envFrom": [{"secretRef": {"name": "keys"}}]}
        ]
    },
}


def test_pod_templates_lists_and_other_objects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    documents = [
        workload("Deployment", "web", TEMPLATE),
        {"apiVersion": "v1", "kind": "List", "items": [workload("CronJob", "nightly", TEMPLATE)]},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "keys"},
            "stringData": {"OPENAI_API_KEY": "sk"},
        },
    ]
    source = tmp_path / "app.yaml"
    source.write_text(dump_yaml(documents))
    assert (
        run(["-f", str(source), "--ca-file", str(_ca(tmp_path)), "-o", str(tmp_path / "out.yaml")])
        == 0
    )
    deployment, listing, service, secret = yaml.safe_load_all((tmp_path / "out.yaml").read_text())
    pod = deployment["spec"]["template"]
    assert pod["metadata"]["annotations"]["sidelight.io/injected"] == "true"
    assert "namespace" not in pod["metadata"]
    (sidecar,) = pod["spec"]["initContainers"]
    assert {"name": "SIDELIGHT_WORKLOAD", "value": "web"} in sidecar["env"]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    # The Secret in the input holds OPENAI_API_KEY: no placeholder shadows it.
    assert env == {
        "OPENAI_BASE_URL": "http://127.0.0.1:4000/v1",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000",
        "ANTHROPIC_API_KEY": "sidelight-placeholder",
    }
    cron = listing["items"][0]["spec"]["jobTemplate"]["spec"]["template"]
    assert cron["spec"]["initContainers"][0]["name"] == "sidelight"
    assert service == documents[2]
    assert secret == documents[3]
    assert capsys.readouterr().err == ""


def _ca(tmp_path: Path) -> Path:
    path = tmp_path / "ca.crt"
    path.write_text("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")
    return path


def test_stdin_skips_and_flags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "app"}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "b", "namespace": "kube-system"},
            "spec": {"containers": [{"name": "app"}]},
        },
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(dump_yaml(pods)))
    argv = ["-f", "-", "--kubernetes-version", "1.28", "--image", "me/sidecar:2", "--port", "4100"]
    assert run([*argv, "--control-plane", "127.0.0.1:9000"]) == 0
    out, err = capsys.readouterr()
    injected, skipped = yaml.safe_load_all(out)
    sidecar = injected["spec"]["containers"][0]
    assert sidecar["image"] == "me/sidecar:2"
    assert "--listen=127.0.0.1:4100" in sidecar["args"]
    assert "--control-plane=127.0.0.1:9000" in sidecar["args"]
    assert skipped == pods[1]
    assert "Pod/b: not injected: namespace kube-system is excluded from injection" in err
    assert "no --ca-file" in err


def test_bad_versions_are_refused(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("kind: Pod\nmetadata: {name: p}\n")
    with pytest.raises(SystemExit, match="--kubernetes-version"):
        run(["-f", str(tmp_path / "p.yaml"), "--kubernetes-version", "latest"])
