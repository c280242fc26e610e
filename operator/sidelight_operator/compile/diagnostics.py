"""What the compile step says about the resources it was given.

A `Diagnostic` names the resource (kind, namespace, name) and the field
(`spec.routes[1].routeTo`) it is about, so that the operator can put it on the
object's status and the standalone source can print it next to the file. A
diagnostic never carries a Secret value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
ResourceKey = tuple[str, str, str]  # (kind, namespace, name)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in one resource; an error keeps the resource out."""

    kind: str
    namespace: str
    name: str
    field: str
    message: str
    severity: Severity = "error"


@dataclass(frozen=True)
class Problem:
    """A diagnostic before it knows which resource it belongs to."""

    field: str
    message: str
    severity: Severity = "error"


class Problems:
    """Collects the problems of one resource while it is being read."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, field: str, message: str) -> None:
        """Record an error: the resource will be left out of the snapshot."""
        self.items.append(Problem(field, message, "error"))

    def warning(self, field: str, message: str) -> None:
        """Record a warning: the resource is still used."""
        self.items.append(Problem(field, message, "warning"))

    @property
    def has_errors(self) -> bool:
        """True when at least one error was recorded."""
        return any(p.severity == "error" for p in self.items)

    def for_resource(self, key: ResourceKey) -> list[Diagnostic]:
        """The recorded problems as diagnostics of the resource `key`."""
        return [Diagnostic(*key, p.field, p.message, p.severity) for p in self.items]
