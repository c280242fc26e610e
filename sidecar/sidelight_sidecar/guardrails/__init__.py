"""Guardrails: detection, redaction and verdicts, as a pure library with no I/O.

`build_guardrails` compiles a snapshot's `Guardrail`s into a
`GuardrailRuntime` once per version; the request pipeline calls its
`evaluate_input` and `evaluate_output` and acts on the `Evaluation`.
"""

from sidelight_sidecar.guardrails.detectors import (
    Detector,
    DetectorRegistry,
    Finding,
    default_registry,
)
from sidelight_sidecar.guardrails.engine import (
    Action,
    Evaluation,
    GuardrailConfigError,
    GuardrailRuntime,
    RuleVerdict,
    Verdict,
    build_guardrails,
)
from sidelight_sidecar.guardrails.redact import RedactionMap, StreamRestorer, redact

__all__ = [
    "Action",
    "Detector",
    "DetectorRegistry",
    "Evaluation",
    "Finding",
    "GuardrailConfigError",
    "GuardrailRuntime",
    "RedactionMap",
    "RuleVerdict",
    "StreamRestorer",
    "Verdict",
    "build_guardrails",
    "default_registry",
    "redact",
]
