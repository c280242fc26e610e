"""Unit tests of the fake kubelet's pure parts: env, volumes, paths (no cluster)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sidelight_e2e import podspec
from sidelight_e2e.kubelet import FakeKubelet, resolve_executable, write_volume


class DictSource:
    """Secrets and ConfigMaps from dicts; tokens recorded and made up."""

    def __init__(
        self,
        secrets: dict[str, dict[str, bytes]] | None = None,
        config_maps: dict[str, dict[str, bytes]] | None = None,
    ) -> None:
        self.secrets = secrets or {}
        self.config_maps = config_maps or {}
        self.token_requests: list[tuple[str | None, int]] = []

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.secrets.get(f"{namespace}/{name}")

    def config_map(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        return self.config_maps.get(f"{namespace}/{name}")

    def service_account_token(self, pod: podspec.Pod, audience: str | None, expiration: int) -> str:
        self.token_requests.append((audience, expiration))
        return f"token-for-{pod['spec'].get('serviceAccountName', 'default')}-{audience}"


def make_pod(
    container: dict[str, Any], volumes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "app-1",
            "namespace": "team",
            "uid": "uid-123",
            "labels": {"app": "demo", "tier": "web"},
            "annotations": {"sidelight.dev/inject": "true"},
        },
        "spec": {
            "serviceAccountName": "app",
            "containers": [{"name": "main", "command": ["true"]}, container],
            "initContainers": [{"name": "setup", "command": ["sh", "-c", "echo hi"]}],
            "volumes": volumes or [],
        },
    }


SOURCE = DictSource(
    secrets={"team/keys": {"API_KEY": b"sk-123", "OTHER": b"x"}},
    config_maps={"team/settings": {"MODE": b"fast", "URL": b"http://up"}},
)


def test_find_container_covers_init_containers() -> None:
    pod = make_pod({"name": "proxy", "command": ["sidelight"]})
    assert podspec.find_container(pod, "setup")["command"] == ["sh", "-c", "echo hi"]
    with pytest.raises(KeyError, match="no container 'nope'"):
        podspec.find_container(pod, "nope")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)-$(B)", "1-2"),
        ("$$(A)", "$(A)"),
        ("$(MISSING)", "$(MISSING)"),
        ("$A $", "$A $"),
        ("$(A", "$(A"),
    ],
)
def test_expand_follows_kubernetes(value: str, expected: str) -> None:
    assert podspec.expand(value, {"A": "1", "B": "2"}) == expected


def test_env_order_value_from_and_expansion() -> None:
    container = {
        "name": "proxy",
        "command": ["sidelight"],
        "envFrom": [
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": "keys"}, "prefix": "S_"},
            {"secretRef": {"name": "absent", "optional": True}},
        ],
        "env": [
            {"name": "MODE", "value": "slow"},
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "API_KEY"}}},
            {"name": "URL2", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "URL"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {
                "name": "INJ",
                "valueFrom": {
                    "fieldRef": {"fieldPath": "metadata.annotations['sidelight.dev/inject']"}
                },
            },
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {
                "name": "OPT",
                "valueFrom": {"secretKeyRef": {"name": "keys", "key": "no", "optional": True}},
            },
            {"name": "JOINED", "value": "$(POD).$(NS):$(KUBERNETES_SERVICE_PORT)"},
        ],
    }
    env = podspec.resolve_env(
        make_pod(container), container, SOURCE, base={"KUBERNETES_SERVICE_PORT": "6443"}
    )
    assert env == {
        "MODE": "slow",
        "URL": "http://up",
        "S_API_KEY": "sk-123",
        "S_OTHER": "x",
        "KEY": "sk-123",
        "URL2": "http://up",
        "POD": "app-1",
        "NS": "team",
        "UID": "uid-123",
        "APP": "demo",
        "INJ": "true",
        "SA": "app",
        "IP": "127.0.0.1",
        "JOINED": "app-1.team:6443",
    }


@pytest.mark.parametrize(
    ("env", "error", "match"),
    [
        (
            [{"name": "K", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "nope"}}}],
            podspec.MissingObjectError,
            "key 'nope' of secret team/keys",
        ),
        (
            [{"name": "K", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "a"}}}],
            podspec.MissingObjectError,
            "configmap team/gone not found",
        ),
        (
            [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
            podspec.UnsupportedPodSpecError,
            "resourceFieldRef is not supported",
        ),
        (
            [{"name": "F", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}}],
            podspec.UnsupportedPodSpecError,
            "status.phase",
        ),
    ],
)
def test_env_errors_are_clear(
    env: list[dict[str, Any]], error: type[Exception], match: str
) -> None:
    container = {"name": "proxy", "command": ["x"], "env": env}
    with pytest.raises(error, match=match):
        podspec.resolve_env(make_pod(container), container, SOURCE)


def test_missing_env_from_is_an_error_unless_optional() -> None:
    container = {"name": "proxy", "command": ["x"], "envFrom": [{"secretRef": {"name": "gone"}}]}
    with pytest.raises(podspec.MissingObjectError, match="envFrom: secret team/gone"):
        podspec.resolve_env(make_pod(container), container, SOURCE)


def test_argv_needs_a_command_and_expands() -> None:
    assert podspec.container_argv(
        {"name": "c", "command": ["run", "$(A)"], "args": ["--x=$(A)", "$$(A)"]}, {"A": "1"}
    ) == ["run", "1", "--x=1", "$(A)"]
    with pytest.raises(podspec.UnsupportedPodSpecError, match="has no command"):
        podspec.container_argv({"name": "c", "args": ["a"]}, {})


def test_volumes_secret_config_map_downward_empty_dir() -> None:
    pod = make_pod({"name": "c", "command": ["x"]})
    secret = podspec.volume_files(
        pod, {"name": "s", "secret": {"secretName": "keys", "defaultMode": 0o400}}, SOURCE
    )
    assert secret == {
        "API_KEY": podspec.File(b"sk-123", 0o400),
        "OTHER": podspec.File(b"x", 0o400),
    }
    config = podspec.volume_files(
        pod,
        {
            "name": "c",
            "configMap": {"name": "settings", "items": [{"key": "URL", "path": "conf/url"}]},
        },
        SOURCE,
    )
    assert config == {"conf/url": podspec.File(b"http://up")}
    downward = podspec.volume_files(
        pod,
        {
            "name": "d",
            "downwardAPI": {
                "items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                ]
            },
        },
        SOURCE,
    )
    assert downward == {
        "labels": podspec.File(b'app="demo"\ntier="web"'),
        "name": podspec.File(b"app-1"),
    }
    assert podspec.volume_files(pod, {"name": "e", "emptyDir": {}}, SOURCE) is None
    with pytest.raises(podspec.UnsupportedPodSpecError, match="hostPath"):
        podspec.volume_files(pod, {"name": "h", "hostPath": {"path": "/x"}}, SOURCE)
    with pytest.raises(podspec.MissingObjectError, match="secret team/gone"):
        podspec.volume_files(pod, {"name": "g", "secret": {"secretName": "gone"}}, SOURCE)
    assert (
        podspec.volume_files(
            pod, {"name": "g", "secret": {"secretName": "gone", "optional": True}}, SOURCE
        )
        == {}
    )


def test_projected_volume_like_kube_api_access() -> None:
    source = DictSource(config_maps={"team/kube-root-ca.crt": {"ca.crt": b"PEM"}})
    volume = {
        "name": "kube-api-access-abcde",
        "projected": {
            "defaultMode": 0o420,
            "sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"serviceAccountToken": {"audience": "sidelight", "path": "sidelight-token"}},
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }
    files = podspec.volume_files(make_pod({"name": "c", "command": ["x"]}), volume, source)
    assert files == {
        "token": podspec.File(b"token-for-app-None", 0o420),
        "sidelight-token": podspec.File(b"token-for-app-sidelight", 0o420),
        "ca.crt": podspec.File(b"PEM", 0o420),
        "namespace": podspec.File(b"team", 0o420),
    }
    assert source.token_requests == [(None, 3607), ("sidelight", 3600)]


def test_rewrite_paths_prefers_longest_and_respects_boundaries() -> None:
    mounts = {
        "/var/run/secrets": "/tmp/a",
        "/var/run/secrets/kubernetes.io/serviceaccount": "/tmp/b",
        "/etc/app": "/tmp/c",
    }
    assert (
        podspec.rewrite_paths("--token=/var/run/secrets/kubernetes.io/serviceaccount/token", mounts)
        == "--token=/tmp/b/token"
    )
    assert podspec.rewrite_paths("/var/run/secrets/other", mounts) == "/tmp/a/other"
    assert (
        podspec.rewrite_paths("/etc/app:/etc/apple:/etc/app.d", mounts)
        == "/tmp/c:/etc/apple:/etc/app.d"
    )
    assert podspec.rewrite_paths("/etc/app", {}) == "/etc/app"


def test_mounts_sub_path_and_expr() -> None:
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "conf", "mountPath": "/etc/app/"},
            {"name": "conf", "mountPath": "/etc/one.yaml", "subPath": "one.yaml"},
            {"name": "data", "mountPath": "/data", "subPathExpr": "$(POD)"},
        ],
    }
    assert podspec.mounts(container, {"POD": "p1"}) == [
        podspec.Mount("/etc/app", "conf"),
        podspec.Mount("/etc/one.yaml", "conf", "one.yaml"),
        podspec.Mount("/data", "data", "p1"),
    ]


def test_write_volume_modes_and_escape(tmp_path: Path) -> None:
    target = write_volume(tmp_path / "v", {"a/b": podspec.File(b"x", 0o600)})
    assert (target / "a" / "b").read_bytes() == b"x"
    assert (target / "a" / "b").stat().st_mode & 0o777 == 0o600
    with pytest.raises(podspec.UnsupportedPodSpecError, match="leaves the volume"):
        write_volume(tmp_path / "w", {"../escape": podspec.File(b"x")})


def test_resolve_executable_finds_venv_scripts() -> None:
    assert resolve_executable("python") == str(Path(sys.executable).parent / "python")
    with pytest.raises(FileNotFoundError, match="not on PATH"):
        resolve_executable("surely-no-such-command-here")


def test_fake_kubelet_runs_a_container_without_a_cluster(tmp_path: Path) -> None:
    """The whole run path, with a dict source and no API server."""
    script = (
        "import os, pathlib; "
        "print(os.environ['KEY'], pathlib.Path(os.environ['CONF'] + '/MODE').read_text(), "
        "os.environ['HOSTNAME'], os.getcwd() != '/work')"
    )
    container = {
        "name": "proxy",
        "command": ["python", "-c", script],
        "env": [
            {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "API_KEY"}}},
            {"name": "CONF", "value": "/etc/settings"},
        ],
        "volumeMounts": [{"name": "settings", "mountPath": "/etc/settings"}],
    }
    pod = make_pod(container, [{"name": "settings", "configMap": {"name": "settings"}}])
    kubelet = FakeKubelet(api=None, workdir=tmp_path)
    try:
        running = kubelet.run(pod, "proxy", source=SOURCE)
        assert running.wait(timeout=30) == 0, running.output()
        assert running.output().strip() == "sk-123 fast app-1 True"
        assert running.env["CONF"] == str(running.mounts["/etc/settings"])
        assert running.host_path("/etc/settings/MODE").read_text() == "fast"
    finally:
        kubelet.stop_all()
    assert not tmp_path.exists()
