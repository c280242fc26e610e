"""Guardrail validation at admission, by the real API server, with its exact words.

As test_crd_admission.py does for LLMRoute (and with its helpers):
crds/guardrail.yaml is applied to the local control plane, a valid
Guardrail using every kind of rule is admitted, and for each OpenAPI
constraint and CEL rule it is broken in one way and `kubectl apply` must
fail with exactly the error text below. The compile step repeats every rule
(tests/operator/golden/compile/guardrail-*), and checks what no schema can:
that each regex compiles.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
from test_crd_admission import NOT_CHECKED, Spec, manifest, removing, setting
from test_crd_admission import invalid as invalid_resource

from sidelight_e2e.cluster import Cluster
from sidelight_e2e.processes import poll

CRD = Path(__file__).resolve().parents[1] / "crds" / "guardrail.yaml"
KIND = "Guardrail"


def valid_spec() -> Spec:
    """Every kind of rule and every spec field: admitted as is."""
    return {
        "podSelector": {"matchLabels": {"app": "chat"}},
        "stage": "both",
        "mode": "enforce",
        "restoreRedactions": True,
        "rules": [
            {"name": "pii", "action": "redact", "pii": {"entities": ["EMAIL", "PHONE"]}},
            {
                "name": "ids",
                "action": "redact",
                "pattern": {"regexes": [r"EMP-\d{6}"], "entity": "EMPLOYEE_ID"},
            },
            {"name": "codenames", "action": "block", "denyList": {"phrases": ["project falcon"]}},
            {"name": "injection", "action": "audit", "promptInjection": {}},
            {"name": "size", "action": "block", "maxInputTokens": 8000},
            {
                "name": "models",
                "action": "block",
                "models": {"allowed": ["gpt-4o*"], "denied": ["gpt-4o-realtime*"]},
            },
        ],
    }


def invalid(message: str, *more: str) -> str:
    """kubectl's text for the Guardrail's errors."""
    return invalid_resource(message, *more, kind=KIND)


ONE_KIND = "set exactly one of pii, pattern, denyList, promptInjection, maxInputTokens or models"
NO_REDACT = "maxInputTokens and models rules cannot redact; use block or audit"

CASES: list[tuple[str, Callable[[Spec], None], str]] = [
    (
        "a rule without a kind",
        setting("rules.3", {"name": "injection", "action": "audit"}),
        invalid(f"spec.rules[3]: Invalid value: {ONE_KIND}"),
    ),
    (
        "a rule with two kinds",
        setting("rules.0.promptInjection", {}),
        invalid(f"spec.rules[0]: Invalid value: {ONE_KIND}"),
    ),
    (
        "maxInputTokens cannot redact",
        setting("rules.4.action", "redact"),
        invalid(f"spec.rules[4].action: Invalid value: {NO_REDACT}"),
    ),
    (
        "models cannot redact",
        setting("rules.5.action", "redact"),
        invalid(f"spec.rules[5].action: Invalid value: {NO_REDACT}"),
    ),
    (
        "input-only rules not in an output guardrail",
        setting("stage", "output"),
        invalid(
            "spec.rules: Invalid value: maxInputTokens and models rules check the request; "
            "they cannot be in a guardrail with stage output"
        ),
    ),
    (
        "rule names unique",
        setting("rules.1.name", "pii"),
        invalid("spec.rules: Invalid value: rule names must be unique"),
    ),
    (
        "a phrase needs a letter or digit",
        setting("rules.2.denyList.phrases", ["!!!"]),
        invalid(
            'spec.rules[2].denyList.phrases[0]: Invalid value: "!!!": '
            "a phrase needs at least one letter or digit"
        ),
    ),
    (
        "rule name syntax",
        setting("rules.0.name", "PII"),
        invalid(
            'spec.rules[0].name: Invalid value: "PII": spec.rules[0].name in body should match '
            "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"
        ),
    ),
    (
        "PII entity enum",
        setting("rules.0.pii.entities", ["EMAIL", "NAME"]),
        invalid(
            'spec.rules[0].pii.entities[1]: Unsupported value: "NAME": supported values: '
            '"EMAIL", "PHONE", "CREDIT_CARD", "US_SSN", "IBAN", "IP_ADDRESS", "DATE_OF_BIRTH", '
            '"SECRET"',
            NOT_CHECKED,
        ),
    ),
    (
        "PII entities are a set",
        setting("rules.0.pii.entities", ["EMAIL", "EMAIL"]),
        invalid('spec.rules[0].pii.entities[1]: Duplicate value: "EMAIL"'),
    ),
    (
        "stage enum",
        setting("stage", "request"),
        invalid(
            'spec.stage: Unsupported value: "request": supported values: "input", "output", "both"',
            NOT_CHECKED,
        ),
    ),
    (
        "mode enum",
        setting("mode", "dry-run"),
        invalid(
            'spec.mode: Unsupported value: "dry-run": supported values: "enforce", "audit"',
            NOT_CHECKED,
        ),
    ),
    (
        "action enum",
        setting("rules.2.action", "deny"),
        invalid(
            'spec.rules[2].action: Unsupported value: "deny": supported values: '
            '"block", "redact", "audit"',
            NOT_CHECKED,
        ),
    ),
    (
        "maxInputTokens at least 1",
        setting("rules.4.maxInputTokens", 0),
        invalid(
            "spec.rules[4].maxInputTokens: Invalid value: 0: "
            "spec.rules[4].maxInputTokens in body should be greater than or equal to 1"
        ),
    ),
    (
        "regexes at most 1000 characters",
        setting("rules.1.pattern.regexes", ["a" * 1001]),
        invalid(
            "spec.rules[1].pattern.regexes[0]: Too long: may not be more than 1000 bytes",
            NOT_CHECKED,
        ),
    ),
    (
        "pattern entity syntax",
        setting("rules.1.pattern.entity", "employee-id"),
        invalid(
            'spec.rules[1].pattern.entity: Invalid value: "employee-id": '
            "spec.rules[1].pattern.entity in body should match '^[A-Z][A-Z0-9_]*$'"
        ),
    ),
    (
        "models names allowed or denied",
        setting("rules.5.models", {}),
        invalid(
            "spec.rules[5].models: Invalid value: 0: "
            "spec.rules[5].models in body should have at least 1 properties"
        ),
    ),
    (
        "rules required",
        removing("rules"),
        invalid("spec.rules: Required value", NOT_CHECKED),
    ),
    (
        "at least one rule",
        setting("rules", []),
        invalid("spec.rules: Invalid value: 0: spec.rules in body should have at least 1 items"),
    ),
    (
        "rule name required",
        removing("rules.0.name"),
        invalid("spec.rules[0].name: Required value", NOT_CHECKED),
    ),
    (
        "promptInjection takes no options",
        setting("rules.3.promptInjection", {"threshold": 0.5}),
        'Error from server (BadRequest): error when creating "STDIN": Guardrail in version '
        '"v1alpha1" cannot be handled as a Guardrail: strict decoding error: unknown field '
        '"spec.rules[3].promptInjection.threshold"',
    ),
]


@pytest.fixture(scope="module")
def guardrail_crd(cluster: Cluster) -> None:
    """crds/guardrail.yaml, established (left installed: other tests of the run use it)."""
    cluster.kubectl("apply", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "crd/guardrails.sidelight.io")


def test_the_valid_guardrail_is_admitted_with_its_defaults(
    cluster: Cluster, guardrail_crd: None, namespace: str
) -> None:
    # kubectl's discovery may lag a just-established CRD by a moment.
    result = poll(
        lambda: cluster.kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            input_text=manifest(namespace, valid_spec(), KIND),
        ),
        timeout=30,
        what="the valid Guardrail to be admitted",
    )
    assert result.stdout.strip() == "guardrail.sidelight.io/bad created (server dry run)"
    minimal = {"rules": [{"name": "injection", "action": "block", "promptInjection": {}}]}
    cluster.kubectl("apply", "-f", "-", input_text=manifest(namespace, minimal, KIND))
    stored = cluster.kubectl(
        "get", "guardrail", "bad", "-n", namespace, "-o", "jsonpath={.spec}"
    ).stdout
    assert stored == (
        '{"mode":"enforce","restoreRedactions":false,"rules":[{"action":"block",'
        '"name":"injection","promptInjection":{}}],"stage":"input"}'
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [pytest.param(mutate, expected, id=name) for name, mutate, expected in CASES],
)
def test_invalid_guardrails_are_refused_naming_the_field(
    cluster: Cluster,
    guardrail_crd: None,
    namespace: str,
    mutate: Callable[[Spec], None],
    expected: str,
) -> None:
    spec = copy.deepcopy(valid_spec())
    mutate(spec)
    result = cluster.kubectl(
        "apply", "-f", "-", input_text=manifest(namespace, spec, KIND), check=False
    )
    assert result.returncode == 1
    assert result.stderr.strip() == expected
    assert "created" not in result.stdout
