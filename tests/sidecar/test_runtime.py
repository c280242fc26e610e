"""Routing on the runtime shape: first match wins, defaults, lazy token counts."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.balancer import EndpointRegistry
from sidelight_sidecar.runtime import RequestFacts, SnapshotError, build_runtime


def backend(name: str, provider: str = "PROVIDER_OPENAI") -> dict[str, Any]:
    return {
        "name": name,
        "provider": provider,
        "model": name,
        "endpoints": [{"url": f"http://127.0.0.1:1/{name}", "weight": 1}],
    }


SEED = {
    "version": "v1",
    "routeSets": [
        {
            "source": {"kind": "LLMRoute", "namespace": "shop", "name": "assistant"},
            "backends": [
                backend("claude-3-haiku", "PROVIDER_ANTHROPIC"),
                backend("gpt-3.5-turbo"),
                backend("gpt-4"),
            ],
            "routes": [
                {
                    "name": "cheap-summaries",
                    "match": {"taskTypes": ["summarization"], "inputTokensLt": "1000"},
                    "routeTo": "claude-3-haiku",
                    "fallbacks": ["gpt-4"],
                },
                {
                    "name": "low-chat",
                    "match": {"taskTypes": ["general_chat"], "userPriorities": ["low"]},
                    "routeTo": "gpt-3.5-turbo",
                },
                {
                    "name": "premium",
                    "match": {
                        "taskTypes": ["general_chat"],
                        "userPriorities": ["high"],
                        "inputTokensGt": "2000",
                    },
                    "routeTo": "gpt-4",
                },
                {
                    "name": "by-header",
                    "match": {"headers": [{"name": "x-tier", "regex": "gold|platinum"}]},
                    "routeTo": "gpt-4",
                },
            ],
        }
    ],
}


def runtime(spec: dict[str, Any]) -> Any:
    snapshot = json_format.ParseDict(spec, snapshot_pb2.Snapshot())
    return build_runtime(snapshot, EndpointRegistry())


def facts(
    model: str = "anything",
    task: str | None = None,
    priority: str | None = None,
    tokens: int = 10,
    headers: dict[str, str] | None = None,
    calls: list[int] | None = None,
) -> RequestFacts:
    def count() -> int:
        if calls is not None:
            calls.append(tokens)
        return tokens

    return RequestFacts(model, task, priority, headers or {}, count)


@pytest.mark.parametrize(
    ("kwargs", "route", "first_backend"),
    [
        ({"task": "summarization", "tokens": 999}, "cheap-summaries", "claude-3-haiku"),
        ({"task": "general_chat", "priority": "low"}, "low-chat", "gpt-3.5-turbo"),
        ({"task": "general_chat", "priority": "high", "tokens": 2001}, "premium", "gpt-4"),
        ({"headers": {"x-tier": "gold"}}, "by-header", "gpt-4"),
        ({"model": "gpt-4"}, "model:gpt-4", "gpt-4"),
    ],
)
def test_seed_rules(kwargs: dict[str, Any], route: str, first_backend: str) -> None:
    decision = runtime(SEED).route(facts(**kwargs))
    assert decision is not None
    assert decision.route.name == route
    assert decision.route.candidates[0].name == first_backend


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "summarization", "tokens": 1000},
        {"task": "general_chat", "priority": "high", "tokens": 2000},
        {"headers": {"x-tier": "goldish"}},
        {"task": "general_chat"},
    ],
)
def test_no_match_and_unknown_model(kwargs: dict[str, Any]) -> None:
    assert runtime(SEED).route(facts(**kwargs)) is None


def test_fallbacks_follow_the_route() -> None:
    decision = runtime(SEED).route(facts(task="summarization"))
    assert decision is not None
    assert [b.name for b in decision.route.candidates] == ["claude-3-haiku", "gpt-4"]


def test_tokens_are_counted_only_when_a_rule_needs_them() -> None:
    calls: list[int] = []
    runtime(SEED).route(facts(task="general_chat", priority="low", calls=calls))
    assert calls == []
    runtime(SEED).route(facts(task="summarization", calls=calls))
    assert calls == [10]


def test_a_route_without_match_is_a_default() -> None:
    spec = {
        "version": "v2",
        "routeSets": [
            {
                "source": {"namespace": "a", "name": "b"},
                "backends": [backend("gpt-4")],
                "routes": [{"name": "default", "routeTo": "gpt-4"}],
            }
        ],
    }
    decision = runtime(spec).route(facts(model="whatever"))
    assert decision is not None
    assert decision.route.name == "default"


def test_a_backend_named_by_the_model_beats_the_default() -> None:
    spec = {
        "version": "v3",
        "routeSets": [
            {
                "source": {"namespace": "a", "name": "b"},
                "backends": [backend("gpt-4"), backend("claude", "PROVIDER_ANTHROPIC")],
                "routes": [
                    {"name": "default", "routeTo": "gpt-4"},
                    {"name": "chat", "match": {"taskTypes": ["chat"]}, "routeTo": "gpt-4"},
                ],
            }
        ],
    }
    config = runtime(spec)
    direct = config.route(facts(model="claude"))
    assert direct is not None
    assert (direct.route.name, direct.direct) == ("model:claude", True)
    rule = config.route(facts(model="claude", task="chat"))
    assert rule is not None
    assert rule.route.name == "chat"
    fallback = config.route(facts(model="unknown"))
    assert fallback is not None
    assert fallback.route.name == "default"


def test_unknown_backend_is_refused() -> None:
    spec = {
        "version": "bad",
        "routeSets": [
            {
                "source": {"namespace": "a", "name": "b"},
                "backends": [backend("gpt-4")],
                "routes": [{"name": "r", "routeTo": "nope"}],
            }
        ],
    }
    with pytest.raises(SnapshotError, match="unknown backends"):
        runtime(spec)
