"""LLMRoute validation at admission, by the real API server, with its exact words.

crds/llmroute.yaml is applied to the local control plane; then, for each
OpenAPI constraint and CEL rule, a valid LLMRoute is broken in one way and
`kubectl apply` must fail with exactly the error text below, which names
the field. The compile step repeats every rule (tests/operator/golden); this
proves that the API server refuses the object before the operator sees it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.processes import poll

CRD = Path(__file__).resolve().parents[1] / "crds" / "llmroute.yaml"
NOT_CHECKED = (
    "<nil>: Invalid value: null: some validation rules were not checked because the object "
    "was invalid; correct the existing errors to complete validation"
)
Spec = dict[str, Any]


def valid_spec() -> Spec:
    """Two backends, a rule with a fallback and a default route: accepted as is."""
    return {
        "backends": [
            {
                "name": "a",
                "provider": "openai",
                "model": "gpt-4",
                "endpoints": [{"url": "https://api.openai.com/v1"}],
                "credentials": {"secretRef": {"name": "openai", "key": "api-key"}},
            },
            {
                "name": "b",
                "provider": "anthropic",
                "model": "claude-3-haiku-20240307",
                "endpoints": [{"url": "https://api.anthropic.com"}],
                "credentials": {"secretRef": {"name": "anthropic", "key": "api-key"}},
            },
        ],
        "routes": [
            {"name": "main", "match": {"taskType": "chat"}, "routeTo": "a", "fallbacks": ["b"]},
            {"name": "default", "routeTo": "b"},
        ],
    }


def manifest(namespace: str, spec: Spec, kind: str = "LLMRoute") -> str:
    """Resource `bad` of `kind` and `namespace` with `spec`, as JSON for kubectl."""
    return json.dumps(
        {
            "apiVersion": "sidelight.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "bad", "namespace": namespace},
            "spec": spec,
        }
    )


def setting(path: str, value: object) -> Callable[[Spec], None]:
    """A mutation that sets `path` (dotted, list indexes as numbers) to `value`."""

    def mutate(spec: Spec) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target: Any = spec
        for part in parents:
            target = target[part]
        target[last] = value

    return mutate


def removing(path: str) -> Callable[[Spec], None]:
    """A mutation that deletes `path`."""

    def mutate(spec: Spec) -> None:
        *parents, last = path.split(".")
        target: Any = spec
        for part in parents:
            target = target[int(part) if part.isdigit() else part]
        del target[last]

    return mutate


def invalid(message: str, *more: str, kind: str = "LLMRoute") -> str:
    """kubectl's text for one error, or for several (one per line)."""
    head = f'The {kind} "bad" is invalid: '
    if not more:
        return f"{head}{message}"
    return "\n".join([head, f"* {message}", *(f"* {m}" for m in more)])


CASES: list[tuple[str, Callable[[Spec], None], str]] = [
    (
        "inputTokensLt > 0",
        setting("routes.0.match.inputTokensLt", 0),
        invalid(
            "spec.routes[0].match.inputTokensLt: Invalid value: "
            "inputTokensLt must be greater than 0"
        ),
    ),
    (
        "inputTokensGt >= 0",
        setting("routes.0.match.inputTokensGt", -1),
        invalid(
            "spec.routes[0].match.inputTokensGt: Invalid value: inputTokensGt must not be negative"
        ),
    ),
    (
        "inputTokensGt < inputTokensLt",
        setting("routes.0.match", {"inputTokensGt": 100, "inputTokensLt": 100}),
        invalid(
            "spec.routes[0].match: Invalid value: inputTokensGt must be less than inputTokensLt"
        ),
    ),
    (
        "routeTo names a backend",
        setting("routes.1.routeTo", "c"),
        invalid(
            "spec.routes: Invalid value: every routes[].routeTo must name a backend in "
            "spec.backends"
        ),
    ),
    (
        "fallbacks name backends",
        setting("routes.0.fallbacks", ["c"]),
        invalid(
            "spec.routes: Invalid value: every routes[].fallbacks entry must name a backend in "
            "spec.backends"
        ),
    ),
    (
        "fallbacks do not repeat routeTo",
        setting("routes.0.fallbacks", ["a"]),
        invalid("spec.routes[0].fallbacks: Invalid value: fallbacks must not repeat routeTo"),
    ),
    (
        "fallbacks are a set",
        setting("routes.0.fallbacks", ["b", "b"]),
        invalid('spec.routes[0].fallbacks[1]: Duplicate value: "b"'),
    ),
    (
        "endpoint URL scheme",
        setting("backends.0.endpoints.0.url", "ftp://api.openai.com/v1"),
        invalid(
            "spec.backends[0].endpoints[0].url: Invalid value: "
            "url must be an http:// or https:// URL with a host"
        ),
    ),
    (
        "endpoint URL host",
        setting("backends.0.endpoints.0.url", "https:///v1"),
        invalid(
            "spec.backends[0].endpoints[0].url: Invalid value: "
            "url must be an http:// or https:// URL with a host"
        ),
    ),
    (
        "provider enum",
        setting("backends.0.provider", "mistral"),
        invalid(
            'spec.backends[0].provider: Unsupported value: "mistral": supported values: '
            '"openai", "azure-openai", "anthropic", "openai-compatible"',
            NOT_CHECKED,
        ),
    ),
    (
        "load-balancing strategy enum",
        setting("loadBalancing", {"strategy": "random"}),
        invalid(
            'spec.loadBalancing.strategy: Unsupported value: "random": supported values: '
            '"weighted-round-robin", "least-outstanding", "latency-ewma"',
            NOT_CHECKED,
        ),
    ),
    (
        "backend names unique",
        setting("backends.1", {**valid_spec()["backends"][1], "name": "a"}),
        invalid(
            "spec.backends: Invalid value: backend names must be unique",
            "spec.routes: Invalid value: every routes[].routeTo must name a backend in "
            "spec.backends",
            "spec.routes: Invalid value: every routes[].fallbacks entry must name a backend in "
            "spec.backends",
        ),
    ),
    (
        "route names unique",
        setting("routes.1.name", "main"),
        invalid("spec.routes: Invalid value: route names must be unique"),
    ),
    (
        "azure-openai needs apiVersion",
        setting("backends.0.provider", "azure-openai"),
        invalid(
            "spec.backends[0].apiVersion: Invalid value: azure-openai backends need apiVersion"
        ),
    ),
    (
        "apiVersion only for azure-openai",
        setting("backends.0.apiVersion", "2024-06-01"),
        invalid(
            "spec.backends[0].apiVersion: Invalid value: "
            "apiVersion applies only to provider azure-openai"
        ),
    ),
    (
        "credentials required",
        removing("backends.0.credentials"),
        invalid(
            "spec.backends[0].credentials: Invalid value: "
            "credentials are required unless the provider is openai-compatible"
        ),
    ),
    (
        "one header matcher",
        setting("routes.0.match.headers", [{"name": "x-team", "exact": "a", "regex": "b.*"}]),
        invalid(
            "spec.routes[0].match.headers[0]: Invalid value: "
            "set exactly one of exact, regex or present"
        ),
    ),
    (
        "header present: true only",
        setting("routes.0.match.headers", [{"name": "x-team", "present": False}]),
        invalid(
            "spec.routes[0].match.headers[0].present: Invalid value: "
            "present must be true (a header that must be absent is not supported)"
        ),
    ),
    (
        "selector In needs values",
        setting("podSelector", {"matchExpressions": [{"key": "app", "operator": "In"}]}),
        invalid(
            "spec.podSelector.matchExpressions[0].values: Invalid value: "
            "operators In and NotIn need values; Exists and DoesNotExist take none"
        ),
    ),
    (
        "selector operator enum",
        setting(
            "podSelector", {"matchExpressions": [{"key": "app", "operator": "Is", "values": ["x"]}]}
        ),
        invalid(
            'spec.podSelector.matchExpressions[0].operator: Unsupported value: "Is": '
            'supported values: "In", "NotIn", "Exists", "DoesNotExist"',
            NOT_CHECKED,
        ),
    ),
    (
        "duration syntax",
        setting("loadBalancing", {"ejection": {"cooldown": "5min"}}),
        invalid(
            'spec.loadBalancing.ejection.cooldown: Invalid value: "5min": '
            "must be a duration from 1ms to 24h, such as 500ms, 30s, 5m or 1h"
        ),
    ),
    (
        "duration at most 24h",
        setting("timeouts", {"request": "25h"}),
        invalid(
            'spec.timeouts.request: Invalid value: "25h": '
            "must be a duration from 1ms to 24h, such as 500ms, 30s, 5m or 1h"
        ),
    ),
    (
        "attempt timeout within request timeout",
        setting("timeouts", {"request": "10s", "attempt": "20s"}),
        invalid(
            "spec.timeouts.attempt: Invalid value: "
            "timeouts.attempt must not exceed timeouts.request (default 120s)"
        ),
    ),
    (
        "backoff base within max",
        setting("retry", {"attempts": 2, "backoff": {"base": "5s", "max": "1s"}}),
        invalid(
            "spec.retry.backoff: Invalid value: "
            "backoff.base must not exceed backoff.max (defaults base 100ms, max 2s)"
        ),
    ),
    (
        "retry attempts at most 10",
        setting("retry", {"attempts": 11}),
        invalid(
            "spec.retry.attempts: Invalid value: 11: "
            "spec.retry.attempts in body should be less than or equal to 10"
        ),
    ),
    (
        "endpoint weight at least 1",
        setting("backends.0.endpoints.0.weight", 0),
        invalid(
            "spec.backends[0].endpoints[0].weight: Invalid value: 0: "
            "spec.backends[0].endpoints[0].weight in body should be greater than or equal to 1"
        ),
    ),
    (
        "Secret name syntax",
        setting("backends.0.credentials.secretRef.name", "OpenAI"),
        invalid(
            'spec.backends[0].credentials.secretRef.name: Invalid value: "OpenAI": '
            "spec.backends[0].credentials.secretRef.name in body should match "
            r"'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'"
        ),
    ),
    (
        "prices not negative",
        setting("backends.0.pricing", {"inputPerMillionTokens": -1, "outputPerMillionTokens": 1}),
        invalid(
            "spec.backends[0].pricing.inputPerMillionTokens: Invalid value: -1: "
            "spec.backends[0].pricing.inputPerMillionTokens in body should be greater than or "
            "equal to 0"
        ),
    ),
    (
        "match not empty",
        setting("routes.0.match", {}),
        invalid(
            "spec.routes[0].match: Invalid value: 0: "
            "spec.routes[0].match in body should have at least 1 properties"
        ),
    ),
    (
        "routes required",
        removing("routes"),
        invalid("spec.routes: Required value", NOT_CHECKED),
    ),
]


@pytest.fixture(scope="module")
def llmroute_crd(cluster: Cluster) -> None:
    """crds/llmroute.yaml, established (left installed: other tests of the run use it)."""
    cluster.kubectl("apply", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/llmroutes.sidelight.io")


def test_the_valid_route_is_admitted(cluster: Cluster, llmroute_crd: None, namespace: str) -> None:
    # kubectl's discovery may lag a just-established CRD by a moment.
    result = poll(
        lambda: cluster.kubectl(
            "apply", "--dry-run=server", "-f", "-", input_text=manifest(namespace, valid_spec())
        ),
        timeout=30,
        what="the valid LLMRoute to be admitted",
    )
    assert result.stdout.strip() == "llmroute.sidelight.io/bad created (server dry run)"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in CASES],
)
def test_invalid_routes_are_refused_naming_the_field(
    cluster: Cluster,
    llmroute_crd: None,
    namespace: str,
    mutate: Callable[[Spec], None],
    expected: str,
) -> None:
    spec = copy.deepcopy(valid_spec())
    mutate(spec)
    result = cluster.kubectl("apply", "-f", "-", input_text=manifest(namespace, spec), check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == expected
    assert "created" not in result.stdout
