"""Guardrails in the compile step, next to LLMRoutes: order, independence, acceptance.

The golden corpus (test_compile_golden.py, cases `guardrail-*`) pins every
field and diagnostic; these tests pin what holds for any input: guardrails
are ordered by (namespace, name) whatever the input order, a broken one
keeps out of the snapshot and nothing else does, and a Guardrail and an
LLMRoute of the same name are two resources.
"""

from __future__ import annotations

import copy
from typing import Any

from sidelight_operator.compile import compile_snapshot
from sidelight_proto.v1 import snapshot_pb2


def guardrail(name: str, ns: str = "shop", **spec: Any) -> dict[str, Any]:
    """A Guardrail blocking secrets, with `spec` fields replaced."""
    rules = [{"name": "secrets", "action": "block", "pii": {"entities": ["SECRET"]}}]
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "Guardrail",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"rules": rules, **spec},
    }


def route(name: str, ns: str = "shop") -> dict[str, Any]:
    """A keyless LLMRoute."""
    backend = {
        "name": "local",
        "provider": "openai-compatible",
        "model": "llama",
        "endpoints": [{"url": "http://vllm:8000/v1"}],
    }
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"backends": [backend], "routes": [{"routeTo": "local"}]},
    }


def sources(snapshot: snapshot_pb2.Snapshot) -> list[tuple[str, str, str]]:
    """(kind, namespace, name) of every part of the snapshot, in order."""
    parts: list[snapshot_pb2.RouteSet | snapshot_pb2.Guardrail] = [
        *snapshot.route_sets,
        *snapshot.guardrails,
    ]
    return [(p.source.kind, p.source.namespace, p.source.name) for p in parts]


def test_guardrails_are_ordered_by_namespace_and_name_whatever_the_input_order() -> None:
    resources = [guardrail("b"), guardrail("a", "zz"), route("r"), guardrail("a"), route("q", "a")]
    forward = compile_snapshot(resources)
    backward = compile_snapshot(resources[::-1])
    assert forward.snapshot == backward.snapshot
    assert forward.accepted == backward.accepted
    assert sources(forward.snapshot) == [
        ("LLMRoute", "a", "q"),
        ("LLMRoute", "shop", "r"),
        ("Guardrail", "shop", "a"),
        ("Guardrail", "shop", "b"),
        ("Guardrail", "zz", "a"),
    ]


def test_a_broken_guardrail_keeps_only_itself_out() -> None:
    broken = guardrail("broken", stage="output", rules=[{"name": "x", "action": "block"}])
    result = compile_snapshot([guardrail("good"), broken, route("r")])
    assert sources(result.snapshot) == [("LLMRoute", "shop", "r"), ("Guardrail", "shop", "good")]
    assert result.accepted == {
        ("LLMRoute", "shop", "r"): True,
        ("Guardrail", "shop", "broken"): False,
        ("Guardrail", "shop", "good"): True,
    }
    assert [(d.kind, d.name, d.field) for d in result.diagnostics] == [
        ("Guardrail", "broken", "spec.rules[0]")
    ]


def test_a_guardrail_and_a_route_may_share_a_name_but_a_guardrail_not_twice() -> None:
    result = compile_snapshot([route("shared"), guardrail("shared")])
    assert result.accepted == {
        ("LLMRoute", "shop", "shared"): True,
        ("Guardrail", "shop", "shared"): True,
    }
    assert len(sources(result.snapshot)) == 2
    twice = compile_snapshot([guardrail("twice"), guardrail("twice", mode="audit")])
    assert twice.accepted == {("Guardrail", "shop", "twice"): False}
    assert {(d.field, d.message) for d in twice.diagnostics} == {
        ("metadata.name", "shop/twice is defined more than once")
    }
    assert not twice.snapshot.guardrails


def test_the_source_carries_the_generation_and_the_version_follows_the_content() -> None:
    first = guardrail("g")
    first["metadata"]["generation"] = 4
    compiled = compile_snapshot([first]).snapshot
    assert compiled.guardrails[0].source == snapshot_pb2.ResourceRef(
        kind="Guardrail", namespace="shop", name="g", generation=4
    )
    audit = copy.deepcopy(first)
    audit["spec"]["mode"] = "audit"
    assert compile_snapshot([audit]).snapshot.version != compiled.version
    assert compile_snapshot([copy.deepcopy(first)]).snapshot.version == compiled.version


def test_the_resource_is_not_modified() -> None:
    resources = [guardrail("g", rules=[{"name": "p", "action": "redact", "pii": {}}]), route("r")]
    before = copy.deepcopy(resources)
    compile_snapshot(resources)
    assert resources == before
