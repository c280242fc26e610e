"""The pure compile step: CRD objects in, a `Snapshot` and diagnostics out.

No I/O, no clock, no API calls (STYLE principle 1). The operator's handlers,
the standalone file source and the tests call the same functions:

- `compile_snapshot(resources)`: LLMRoutes, Guardrails, LLMQuotas and Secrets to a
  `CompileResult`;
- `select_for_pod(resources, namespace, labels)`: what applies to one pod.
"""

from sidelight_operator.compile.compiler import CompileResult, compile_snapshot, snapshot_version
from sidelight_operator.compile.diagnostics import Diagnostic, ResourceKey, Severity
from sidelight_operator.compile.selection import referenced_secrets, select_for_pod

__all__ = [
    "CompileResult",
    "Diagnostic",
    "ResourceKey",
    "Severity",
    "compile_snapshot",
    "referenced_secrets",
    "select_for_pod",
    "snapshot_version",
]
