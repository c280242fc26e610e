"""The custom resource kinds the operator reconciles.

A list, not a constant per kind: a kind joins it when the compile step
compiles it (`compile.compiler.COMPILED`), and everything that watches,
indexes or writes status iterates over it. Its CRD must be installed: the
operator lists every kind of this list before it serves.
"""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "sidelight.io"
VERSION = "v1alpha1"


@dataclass(frozen=True)
class CrdKind:
    """One custom resource kind: how kopf and the API client address it."""

    kind: str
    plural: str
    group: str = GROUP
    version: str = VERSION

    @property
    def api_version(self) -> str:
        """`group/version`, as in an object's apiVersion."""
        return f"{self.group}/{self.version}"


KINDS: tuple[CrdKind, ...] = (
    CrdKind("LLMRoute", "llmroutes"),
    CrdKind("Guardrail", "guardrails"),
    CrdKind("LLMQuota", "llmquotas"),
)
