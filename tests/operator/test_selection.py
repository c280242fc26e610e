"""select_for_pod: namespace plus LabelSelector semantics, and only the Secrets needed."""

from __future__ import annotations

from typing import Any

import pytest

from sidelight_operator.compile import compile_snapshot, select_for_pod


def route(name: str, selector: object = None, secret: str = "openai", ns: str = "shop") -> Any:
    """An LLMRoute with an optional podSelector, naming one Secret."""
    spec: dict[str, Any] = {
        "backends": [
            {
                "name": "b",
                "provider": "openai",
                "model": "gpt-4",
                "endpoints": [{"url": "https://api.openai.com/v1"}],
                "credentials": {"secretRef": {"name": secret, "key": "api-key"}},
            }
        ],
        "routes": [{"routeTo": "b"}],
    }
    if selector is not None:
        spec["podSelector"] = selector
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "LLMRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def secret(name: str, ns: str = "shop") -> Any:
    """A Secret with an `api-key`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns},
        "stringData": {"api-key": "k"},
    }


def names(resources: list[Any]) -> list[str]:
    """`Kind/name` of each resource, in order."""
    return [f"{r['kind']}/{r['metadata']['name']}" for r in resources]


def test_no_selector_applies_to_the_whole_namespace_only() -> None:
    resources = [route("here"), route("there", ns="other"), secret("openai")]
    assert names(select_for_pod(resources, "shop", {})) == ["LLMRoute/here", "Secret/openai"]
    assert names(select_for_pod(resources, "other", {"app": "x"})) == ["LLMRoute/there"]


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    """A selector with one matchExpression."""
    item: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        item["values"] = list(values)
    return {"matchExpressions": [item]}


@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({}, {}, True),
        ({"matchLabels": {"app": "chat"}}, {"app": "chat", "tier": "web"}, True),
        ({"matchLabels": {"app": "chat"}}, {"app": "search"}, False),
        ({"matchLabels": {"app": "chat"}}, {}, False),
        ({"matchLabels": {"app": ""}}, {"app": ""}, True),
        (expr("app", "In", "a", "b"), {"app": "b"}, True),
        (expr("app", "In", "a"), {"app": "c"}, False),
        (expr("app", "In", "a"), {}, False),
        (expr("tier", "NotIn", "batch"), {}, True),
        (expr("tier", "NotIn", "batch"), {"tier": "web"}, True),
        (expr("tier", "NotIn", "batch"), {"tier": "batch"}, False),
        (expr("canary", "Exists"), {"canary": ""}, True),
        (expr("canary", "Exists"), {}, False),
        (expr("canary", "DoesNotExist"), {}, True),
        (expr("canary", "DoesNotExist"), {"canary": "1"}, False),
        (
            {"matchLabels": {"app": "chat"}, **expr("canary", "DoesNotExist")},
            {"app": "chat", "canary": "1"},
            False,
        ),
    ],
)
def test_label_selector_semantics(
    selector: dict[str, Any], labels: dict[str, str], selected: bool
) -> None:
    resources = [route("r", selector)]
    assert bool(select_for_pod(resources, "shop", labels)) is selected


def test_only_secrets_of_selected_routes_in_the_pod_namespace() -> None:
    resources = [
        route("chat", {"matchLabels": {"app": "chat"}}, secret="openai"),
        route("search", {"matchLabels": {"app": "search"}}, secret="anthropic"),
        route("elsewhere", secret="azure", ns="other"),
        secret("openai"),
        secret("anthropic"),
        secret("unrelated"),
        secret("openai", ns="other"),
        secret("azure", ns="other"),
    ]
    selected = select_for_pod(resources, "shop", {"app": "chat"})
    assert names(selected) == ["LLMRoute/chat", "Secret/openai"]
    assert selected[1]["metadata"]["namespace"] == "shop"


def test_malformed_selector_reaches_compile_and_is_rejected() -> None:
    bad = route("bad", {"matchExpressions": [{"key": "app", "operator": "Like"}]})
    selected = select_for_pod([bad, secret("openai")], "shop", {"app": "chat"})
    assert names(selected) == ["LLMRoute/bad", "Secret/openai"]
    result = compile_snapshot(selected)
    assert not result.snapshot.route_sets
    assert [d.field for d in result.diagnostics] == [
        "spec.podSelector.matchExpressions[0].operator"
    ]


def guardrail(name: str, selector: object = None, ns: str = "shop") -> Any:
    """A Guardrail with one rule and an optional podSelector."""
    spec: dict[str, Any] = {"rules": [{"name": "pii", "action": "redact", "pii": {}}]}
    if selector is not None:
        spec["podSelector"] = selector
    return {
        "apiVersion": "sidelight.io/v1alpha1",
        "kind": "Guardrail",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def test_guardrails_are_selected_like_routes_and_bring_no_secrets() -> None:
    resources = [
        guardrail("everyone"),
        guardrail("chat-only", {"matchLabels": {"app": "chat"}}),
        guardrail("not-batch", expr("tier", "NotIn", "batch")),
        guardrail("elsewhere", ns="other"),
        route("chat", {"matchLabels": {"app": "chat"}}),
        secret("openai"),
        secret("unrelated"),
    ]
    chat = select_for_pod(resources, "shop", {"app": "chat"})
    assert names(chat) == [
        "Guardrail/everyone",
        "Guardrail/chat-only",
        "Guardrail/not-batch",
        "LLMRoute/chat",
        "Secret/openai",
    ]
    batch = select_for_pod(resources, "shop", {"app": "search", "tier": "batch"})
    assert names(batch) == ["Guardrail/everyone"]
    result = compile_snapshot(chat)
    assert [g.source.name for g in result.snapshot.guardrails] == [
        "chat-only",
        "everyone",
        "not-batch",
    ]
    assert result.diagnostics == []
