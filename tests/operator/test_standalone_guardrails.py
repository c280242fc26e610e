"""Standalone mode takes Guardrail files like LLMRoute files: loaded, compiled, diagnosed.

`sidelight run -f DIR` is `compile_snapshot(load_resources(...) + resolve_secrets(...))`;
these tests take that path with Guardrails in the files.
"""

from __future__ import annotations

from pathlib import Path

from sidelight_operator.compile import compile_snapshot
from sidelight_operator.standalone import env_name, load_resources, resolve_secrets
from sidelight_proto.v1 import snapshot_pb2

EXAMPLES = Path(__file__).resolve().parents[2] / "crds" / "examples" / "standalone"
ROUTE = """\
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: local}
spec:
  backends: [{name: vllm, provider: openai-compatible, model: llama, endpoints: [{url: "http://127.0.0.1:8000/v1"}]}]
  routes: [{routeTo: vllm}]
"""
GUARDRAIL = """\
apiVersion: sidelight.io/v1alpha1
kind: Guardrail
metadata: {{name: {name}}}
spec:
  rules:
  - {{name: codenames, action: block, {rule}}}
"""


def compile_files(*paths: Path) -> tuple[snapshot_pb2.Snapshot, list[str]]:
    """What `sidelight run -f` compiles, with every secretRef set; diagnostics as lines."""
    resources, diagnostics = load_resources(list(paths))
    env = {env_name(name, "api-key"): "k" for name in ("openai", "anthropic")}
    result = compile_snapshot([*resources, *resolve_secrets(resources, env, None)])
    lines = [
        f"{d.severity} {d.kind} {d.namespace}/{d.name} {d.field}: {d.message}"
        for d in [*diagnostics, *result.diagnostics]
    ]
    return result.snapshot, lines


def test_the_standalone_examples_include_a_guardrail_for_every_request() -> None:
    snapshot, diagnostics = compile_files(EXAMPLES)
    assert diagnostics == []
    [guardrail] = snapshot.guardrails
    assert (guardrail.source.namespace, guardrail.source.name) == ("default", "local-safety")
    assert guardrail.stage == snapshot_pb2.GUARDRAIL_STAGE_INPUT
    assert guardrail.restore_redactions
    assert [(r.name, r.WhichOneof("kind")) for r in guardrail.rules] == [
        ("pii", "pii"),
        ("secrets", "pii"),
        ("injection", "prompt_injection"),
    ]
    assert [r.source.name for r in snapshot.route_sets] == ["assistant"]


def test_guardrail_files_sit_next_to_route_files(tmp_path: Path) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE)
    (tmp_path / "guardrails.yaml").write_text(
        GUARDRAIL.format(name="a", rule="denyList: {phrases: [project falcon]}")
        + "---\n"
        + GUARDRAIL.format(name="b", rule="promptInjection: {}")
    )
    snapshot, diagnostics = compile_files(tmp_path)
    assert diagnostics == []
    assert [(g.source.namespace, g.source.name) for g in snapshot.guardrails] == [
        ("default", "a"),
        ("default", "b"),
    ]
    assert [r.source.name for r in snapshot.route_sets] == ["local"]


def test_a_broken_guardrail_file_is_reported_by_resource_and_field(tmp_path: Path) -> None:
    (tmp_path / "route.yaml").write_text(ROUTE)
    (tmp_path / "good.yaml").write_text(GUARDRAIL.format(name="good", rule="promptInjection: {}"))
    (tmp_path / "typo.yaml").write_text(
        GUARDRAIL.format(name="typo", rule="denylist: {phrases: [project falcon]}")
    )
    (tmp_path / "regex.yaml").write_text(
        GUARDRAIL.format(name="regex", rule="pattern: {regexes: ['EMP-(\\d+']}")
    )
    snapshot, diagnostics = compile_files(tmp_path)
    assert diagnostics == [
        "error Guardrail default/regex spec.rules[0].pattern.regexes[0]: "
        "invalid regular expression: missing ), unterminated subpattern at position 4",
        "error Guardrail default/typo spec.rules[0].denylist: unknown field",
        "error Guardrail default/typo spec.rules[0]: "
        "set exactly one of pii, pattern, denyList, promptInjection, maxInputTokens or models",
    ]
    assert [g.source.name for g in snapshot.guardrails] == ["good"]
    assert [r.source.name for r in snapshot.route_sets] == ["local"]
