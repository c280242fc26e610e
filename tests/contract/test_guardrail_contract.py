"""The Guardrail's three descriptions agree: CRD schema, compile step, sidecar engine.

- The PII entity names of the CRD's enum, of the compile step and of the
  sidecar's detector registry are the same.
- Every bound of the schema is the compile step's.
- What the compile step accepts, the sidecar builds (a Guardrail it cannot
  build would make it NACK the whole snapshot): every accepted Guardrail of
  the golden corpus and of the examples; and for the checks that only the
  compile step makes in full (regexes, deny-list phrases, input-only rules),
  the compile step refuses exactly what the sidecar's `build_guardrails`
  refuses.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidelight_operator.compile import compile_snapshot, routes, selection
from sidelight_operator.compile import guardrail as compile_guardrail
from sidelight_operator.compile.diagnostics import Problems
from sidelight_operator.compile.reader import Reader
from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.guardrails import GuardrailConfigError, build_guardrails, default_registry
from tests.contract.test_crd_schema import EXAMPLES, load_crd, node, schemas
from tests.operator.test_compile_golden import GOLDEN

ROOT = Path(__file__).resolve().parents[2]
API = ("sidelight.io/v1alpha1", "Guardrail")


def doc_blocks() -> list[Any]:
    """The YAML blocks of docs/guardrails.md, as parameters."""
    page = (ROOT / "docs" / "guardrails.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", page, re.S)]
    return [pytest.param(b, id=str(b.get("kind") or next(iter(b)))) for b in blocks]


@pytest.mark.parametrize("block", doc_blocks())
def test_the_documented_yaml_compiles(block: dict[str, Any]) -> None:
    """The page's Guardrail, and each rule kind's snippet as a rule, compile as they are."""
    if block.get("kind") != "Guardrail":
        rule = {"name": "documented", "action": "block", **block}
        block = {
            "apiVersion": "sidelight.io/v1alpha1",
            "kind": "Guardrail",
            "metadata": {"name": "documented", "namespace": "docs"},
            "spec": {"rules": [rule]},
        }
    result = compile_snapshot([block])
    assert result.diagnostics == []
    assert len(result.snapshot.guardrails) == 1


def test_guardrail_crd_names() -> None:
    spec = load_crd(ROOT / "crds" / "guardrail.yaml")["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["kind"]) == (
        "sidelight.io",
        "Namespaced",
        "Guardrail",
    )
    assert spec["names"]["plural"] == "guardrails"
    [version] = spec["versions"]
    assert version["name"] == "v1alpha1"
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns == ["Stage", "Mode", "Rules", "Accepted", "Programmed", "Synced", "Age"]


def test_pii_entities_are_the_sidecar_registry_entities() -> None:
    enum = node(schemas()[API], "spec.rules[].pii.entities[]")["enum"]
    assert enum == list(compile_guardrail.PII_ENTITIES)
    assert set(enum) == default_registry().entities


LIMITS = [
    ("spec.stage", "enum", list(compile_guardrail.STAGES)),
    ("spec.stage", "default", compile_guardrail.DEFAULT_STAGE),
    ("spec.mode", "enum", list(compile_guardrail.MODES)),
    ("spec.mode", "default", compile_guardrail.DEFAULT_MODE),
    ("spec.restoreRedactions", "default", False),
    ("spec.rules", "maxItems", compile_guardrail.MAX_RULES),
    ("spec.rules[]", "required", ["name", "action"]),
    ("spec.rules[].name", "maxLength", compile_guardrail.MAX_NAME),
    ("spec.rules[].name", "pattern", f"^{compile_guardrail.RULE_NAME.pattern}$"),
    ("spec.rules[].action", "enum", list(compile_guardrail.ACTIONS)),
    ("spec.rules[].pii.entities", "maxItems", compile_guardrail.MAX_ENTITIES),
    ("spec.rules[].pattern.regexes", "maxItems", compile_guardrail.MAX_REGEXES),
    ("spec.rules[].pattern.regexes[]", "maxLength", compile_guardrail.MAX_REGEX),
    ("spec.rules[].pattern.entity", "maxLength", compile_guardrail.MAX_ENTITY),
    ("spec.rules[].pattern.entity", "pattern", f"^{compile_guardrail.ENTITY.pattern}$"),
    ("spec.rules[].denyList.phrases", "maxItems", compile_guardrail.MAX_PHRASES),
    ("spec.rules[].denyList.phrases[]", "maxLength", compile_guardrail.MAX_PHRASE),
    ("spec.rules[].maxInputTokens", "maximum", routes.MAX_TOKENS),
    ("spec.rules[].models.allowed", "maxItems", compile_guardrail.MAX_MODELS),
    ("spec.rules[].models.denied[]", "maxLength", routes.MAX_MODEL),
    ("spec.podSelector.matchExpressions", "maxItems", selection.MAX_MATCH_EXPRESSIONS),
]


@pytest.mark.parametrize(("path", "keyword", "value"), LIMITS)
def test_limits_match_the_compile_step(path: str, keyword: str, value: object) -> None:
    assert node(schemas()[API], path)[keyword] == value


def test_every_rule_kind_is_in_the_schema_and_the_one_kind_rule() -> None:
    rule = node(schemas()[API], "spec.rules[]")
    kinds = set(compile_guardrail.RULE_KINDS)
    assert kinds == set(rule["properties"]) - {"name", "action"}
    [one_kind, *_] = rule["x-kubernetes-validations"]
    assert one_kind["message"] == compile_guardrail.ONE_KIND
    assert {k for k in kinds if f"has(self.{k})" in one_kind["rule"]} == kinds


def accepted_guardrails() -> list[Any]:
    """The Guardrails that compile accepts, per golden case and per example file."""
    found = {}
    for case in sorted(p for p in GOLDEN.iterdir() if p.is_dir()):
        found[f"golden/{case.name}"] = case / "input.yaml"
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        found[f"examples/{path.relative_to(EXAMPLES)}"] = path
    params = []
    for name, path in found.items():
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        guardrails = compile_snapshot(docs).snapshot.guardrails
        if guardrails:
            params.append(pytest.param(list(guardrails), id=name))
    return params


@pytest.mark.parametrize("guardrails", accepted_guardrails())
def test_what_compile_accepts_the_sidecar_builds(
    guardrails: list[snapshot_pb2.Guardrail],
) -> None:
    assert build_guardrails(guardrails)  # raises GuardrailConfigError if it cannot


STAGES = compile_guardrail.STAGES


def accepted(stage: str, rule: dict[str, Any]) -> bool:
    """Whether the compile step accepts a guardrail of `stage` with the one `rule`."""
    problems = Problems()
    source = snapshot_pb2.ResourceRef(kind="Guardrail", namespace="ns", name="g")
    spec = {"stage": stage, "rules": [rule]}
    compile_guardrail.build_guardrail(source, spec, Reader(problems))
    return not problems.has_errors


def built(stage: str, rule: snapshot_pb2.GuardrailRule) -> bool:
    """Whether the sidecar builds a guardrail of `stage` with the one `rule`."""
    guardrail = snapshot_pb2.Guardrail(stage=STAGES[stage], rules=[rule])
    try:
        build_guardrails([guardrail])
    except GuardrailConfigError:
        return False
    return True


BLOCK = snapshot_pb2.GUARDRAIL_ACTION_BLOCK
ACTIONS = {
    "block": BLOCK,
    "redact": snapshot_pb2.GUARDRAIL_ACTION_REDACT,
    "audit": snapshot_pb2.GUARDRAIL_ACTION_AUDIT,
}
REGEXES = [
    r"EMP-\d{6}",
    r"(?i)staff",
    "[unclosed",
    "(?P<x>a)(?P<x>b)",
    "*star",
    r"a{2,1}",
    "(?<=a+)b",
]
PHRASES = ["project falcon", "ünïcode", "Ⅻ", "１２３", "!!!", " - ", "___", "…", "-\u0301-"]
CASES = [
    *(
        pytest.param(
            "input",
            {"name": "r", "action": "block", "pattern": {"regexes": [r]}},
            snapshot_pb2.GuardrailRule(
                name="r", action=BLOCK, pattern=snapshot_pb2.PatternRule(regexes=[r])
            ),
            id=f"regex {r}",
        )
        for r in REGEXES
    ),
    *(
        pytest.param(
            "input",
            {"name": "r", "action": "block", "denyList": {"phrases": [p]}},
            snapshot_pb2.GuardrailRule(
                name="r", action=BLOCK, deny_list=snapshot_pb2.DenyListRule(phrases=[p])
            ),
            id=f"phrase {p!r}",
        )
        for p in PHRASES
    ),
    *(
        pytest.param(
            stage,
            {"name": "r", "action": action, "maxInputTokens": 10},
            snapshot_pb2.GuardrailRule(name="r", action=ACTIONS[action], max_input_tokens=10),
            id=f"{stage} {action} maxInputTokens",
        )
        for stage in STAGES
        for action in ACTIONS
    ),
    *(
        pytest.param(
            stage,
            {"name": "r", "action": action, "models": {"denied": ["gpt-3*"]}},
            snapshot_pb2.GuardrailRule(
                name="r", action=ACTIONS[action], models=snapshot_pb2.ModelRule(denied=["gpt-3*"])
            ),
            id=f"{stage} {action} models",
        )
        for stage in STAGES
        for action in ACTIONS
    ),
]


@pytest.mark.parametrize(("stage", "rule", "wire"), CASES)
def test_compile_refuses_exactly_what_the_sidecar_cannot_build(
    stage: str, rule: dict[str, Any], wire: snapshot_pb2.GuardrailRule
) -> None:
    assert accepted(stage, rule) == built(stage, wire)
