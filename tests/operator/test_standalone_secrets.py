"""resolve_secrets: Secrets for standalone mode from the environment or a directory."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from sidelight_operator.compile import compile_snapshot
from sidelight_operator.standalone import env_name, resolve_secrets


def route(*refs: tuple[str, str], namespace: str = "default") -> dict[str, Any]:
    """An LLMRoute with one backend per (secret name, key)."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": "r", "namespace": namespace},
        "spec": {
            "backends": [
                {
                    "name": f"b{i}",
                    "provider": "openai",
                    "model": "gpt-4",
                    "endpoints": [{"url": "https://api.openai.com/v1"}],
                    "credentials": {"secretRef": {"name": name, "key": key}},
                }
                for i, (name, key) in enumerate(refs)
            ],
            "routes": [{"routeTo": "b0"}],
        },
    }


def values(secrets: list[dict[str, Any]]) -> dict[tuple[str, str, str], bytes]:
    """(namespace, name, key) -> decoded value of synthetic Secrets."""
    return {
        (s["metadata"]["namespace"], s["metadata"]["name"], key): base64.b64decode(value)
        for s in secrets
        for key, value in s["data"].items()
    }


@pytest.mark.parametrize(
    ("name", "key", "variable"),
    [
        ("openai", "api-key", "SIDELIGHT_SECRET_OPENAI_API_KEY"),
        ("azure.openai-eu", "key_1", "SIDELIGHT_SECRET_AZURE_OPENAI_EU_KEY_1"),
        ("anthropic", "API.Key", "SIDELIGHT_SECRET_ANTHROPIC_API_KEY"),
    ],
)
def test_environment_variable_names(name: str, key: str, variable: str) -> None:
    assert env_name(name, key) == variable


def test_environment_wins_over_the_directory(tmp_path: Path) -> None:
    (tmp_path / "openai").mkdir()
    (tmp_path / "openai" / "api-key").write_text("from-file\n")
    env = {"SIDELIGHT_SECRET_OPENAI_API_KEY": "from-env"}
    secrets = resolve_secrets([route(("openai", "api-key"))], env, tmp_path)
    assert values(secrets) == {("default", "openai", "api-key"): b"from-env"}
    assert secrets[0]["apiVersion"] == "v1"
    assert secrets[0]["kind"] == "Secret"


def test_directory_when_the_variable_is_unset_or_empty(tmp_path: Path) -> None:
    (tmp_path / "openai").mkdir()
    (tmp_path / "openai" / "api-key").write_bytes(b"from-file\r\n\n")
    (tmp_path / "openai" / "org").write_text("org-1")
    resources = [route(("openai", "api-key"), ("openai", "org"))]
    secrets = resolve_secrets(resources, {"SIDELIGHT_SECRET_OPENAI_API_KEY": ""}, tmp_path)
    assert len(secrets) == 1
    assert values(secrets) == {
        ("default", "openai", "api-key"): b"from-file",
        ("default", "openai", "org"): b"org-1",
    }


def test_unresolved_refs_stay_missing_and_compile_reports_them(tmp_path: Path) -> None:
    resources = [route(("openai", "api-key"), ("anthropic", "api-key"))]
    env = {"SIDELIGHT_SECRET_OPENAI_API_KEY": "k"}
    secrets = resolve_secrets(resources, env, tmp_path)
    assert values(secrets) == {("default", "openai", "api-key"): b"k"}
    result = compile_snapshot([*resources, *secrets])
    assert [(d.field, d.message) for d in result.diagnostics] == [
        ("spec.backends[1].credentials.secretRef", "Secret default/anthropic not found")
    ]


def test_without_a_directory_only_the_environment_counts() -> None:
    resources = [route(("openai", "api-key"), namespace="shop")]
    assert resolve_secrets(resources, {}, None) == []
    secrets = resolve_secrets(resources, {"SIDELIGHT_SECRET_OPENAI_API_KEY": "k"}, None)
    assert values(secrets) == {("shop", "openai", "api-key"): b"k"}
    assert compile_snapshot([*resources, *secrets]).diagnostics == []


def test_a_secret_in_the_files_is_used_as_it_is() -> None:
    given = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai", "namespace": "default"},
        "stringData": {"api-key": "from-files"},
    }
    resources = [route(("openai", "api-key")), given]
    env = {"SIDELIGHT_SECRET_OPENAI_API_KEY": "from-env"}
    assert resolve_secrets(resources, env, None) == []
    snapshot = compile_snapshot(resources).snapshot
    assert snapshot.route_sets[0].backends[0].credential.value == b"from-files"


def test_refs_that_could_leave_the_directory_are_skipped(tmp_path: Path) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (tmp_path / "outside").write_text("stolen")
    (secrets_dir / "ok").mkdir()
    resources = [route(("..", "outside"), ("ok", ".."), ("../secrets", "x"))]
    assert resolve_secrets(resources, {}, secrets_dir) == []


def test_a_key_that_is_a_directory_is_missing(tmp_path: Path) -> None:
    (tmp_path / "openai" / "api-key").mkdir(parents=True)
    assert resolve_secrets([route(("openai", "api-key"))], {}, tmp_path) == []
