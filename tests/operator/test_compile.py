"""Properties of the compile step that hold for every input.

The golden corpus (test_compile_golden.py) pins outputs; these tests pin
what must never change: secrets stay out of messages and reprs, the version
is a content hash, input order and input objects do not matter.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from sidelight_operator.compile import compile_snapshot, snapshot_version
from sidelight_operator.compile.reader import parse_duration_ms
from sidelight_proto.v1 import snapshot_pb2

SECRET_VALUE = "sk-live-do-not-print-me"


def llmroute(name: str, namespace: str = "shop", route_to: str = "gpt-4") -> dict[str, Any]:
    """A valid LLMRoute naming the `openai` Secret (route_to may break it)."""
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backends": [
                {
                    "name": "gpt-4",
                    "provider": "openai",
                    "model": "gpt-4",
                    "endpoints": [{"url": "https://api.openai.com/v1"}],
                    "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
                }
            ],
            "routes": [{"routeTo": route_to}],
        },
    }


def secret(namespace: str = "shop", **string_data: str) -> dict[str, Any]:
    """The `openai` Secret."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai", "namespace": namespace},
        "stringData": string_data,
    }


def test_secret_value_reaches_the_credential() -> None:
    result = compile_snapshot([llmroute("a"), secret(**{"api-key": SECRET_VALUE})])
    credential = result.snapshot.route_sets[0].backends[0].credential
    assert credential.value == SECRET_VALUE.encode()
    assert (credential.secret_ref.name, credential.secret_ref.key) == ("openai", "api-key")


def test_secret_value_never_in_repr_or_diagnostics() -> None:
    resources = [
        llmroute("good"),
        llmroute("broken", route_to="nope"),
        secret(**{"api-key": SECRET_VALUE}),
        secret("other", **{"api-key": SECRET_VALUE}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "shop"}},
    ]
    result = compile_snapshot(resources)
    assert result.snapshot.route_sets  # the value is in there...
    for text in (repr(result), str(result), *(repr(d) for d in result.diagnostics)):
        assert SECRET_VALUE not in text  # ...and nowhere a person reads


def test_version_is_the_content_hash_without_the_version() -> None:
    result = compile_snapshot([llmroute("a"), secret(**{"api-key": "k"})])
    content = snapshot_pb2.Snapshot()
    content.CopyFrom(result.snapshot)
    content.version = ""
    digest = hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()
    assert result.snapshot.version == digest[:16]
    assert snapshot_version(result.snapshot) == result.snapshot.version


def test_version_changes_with_content_only() -> None:
    resources = [llmroute("a"), llmroute("b", "other"), secret(**{"api-key": "k"})]
    first = compile_snapshot(resources).snapshot.version
    assert compile_snapshot(copy.deepcopy(resources)).snapshot.version == first
    rotated = [llmroute("a"), llmroute("b", "other"), secret(**{"api-key": "k2"})]
    assert compile_snapshot(rotated).snapshot.version != first


def test_input_order_does_not_matter() -> None:
    resources = [
        llmroute("b"),
        llmroute("a", "zz"),
        llmroute("c", route_to="nope"),
        llmroute("a"),
        secret(**{"api-key": "k"}),
        secret("zz", **{"api-key": "k"}),
    ]
    forward = compile_snapshot(resources)
    backward = compile_snapshot(resources[::-1])
    assert forward.snapshot == backward.snapshot
    assert forward.diagnostics == backward.diagnostics
    assert forward.accepted == backward.accepted
    names = [(rs.source.namespace, rs.source.name) for rs in forward.snapshot.route_sets]
    assert names == [("shop", "a"), ("shop", "b"), ("zz", "a")]


def test_input_is_not_modified() -> None:
    resources = [llmroute("a"), llmroute("b", route_to="nope"), secret(**{"api-key": "k"})]
    before = copy.deepcopy(resources)
    compile_snapshot(resources)
    assert resources == before


def test_one_broken_resource_keeps_the_others() -> None:
    result = compile_snapshot(
        [llmroute("good"), llmroute("broken", route_to="nope"), secret(**{"api-key": "k"})]
    )
    assert [rs.source.name for rs in result.snapshot.route_sets] == ["good"]
    assert result.accepted == {
        ("LLMRoute", "shop", "good"): True,
        ("LLMRoute", "shop", "broken"): False,
    }
    assert [(d.name, d.field) for d in result.diagnostics] == [("broken", "spec.routes[0].routeTo")]


def test_secrets_of_another_namespace_are_not_used() -> None:
    result = compile_snapshot([llmroute("a"), secret("elsewhere", **{"api-key": "k"})])
    assert not result.snapshot.route_sets
    [diagnostic] = result.diagnostics
    assert diagnostic.field == "spec.backends[0].credentials.secretRef"
    assert diagnostic.message == "Secret shop/openai not found"


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1ms", 1), ("500ms", 500), ("30s", 30_000), ("5m", 300_000), ("1h", 3_600_000)],
)
def test_durations_in_milliseconds(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "0s", "1.5s", "1m30s", "30", "30 s", "s", "1d", "-1s", "01s"])
def test_malformed_durations(text: str) -> None:
    assert parse_duration_ms(text) is None
