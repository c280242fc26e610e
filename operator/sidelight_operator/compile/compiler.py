"""CRD objects in, one `Snapshot` out: the pure compile step.

`compile_snapshot` takes resources as plain dicts, as the Kubernetes API
returns them (LLMRoutes, Guardrails, LLMQuotas and v1 Secrets), and returns the
Snapshot, the diagnostics, and whether each resource was accepted. It does
no I/O and reads no clock, so the operator, the standalone file source and
the tests all get the same answer from the same input (STYLE principle 1).

Each compiled kind is one entry of `COMPILED`: how to build its part of the
Snapshot and which repeated field holds it. Kinds not in it are ignored with
a warning. A resource with an error is left out of the snapshot entirely;
the others stay. Parts are ordered by (namespace, name) within their field,
and `Snapshot.version` is the first 16 hex digits of the sha256 of the
snapshot's deterministic serialisation (with an empty version), so equal
content has equal versions.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Mapping, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

from sidelight_operator.compile.diagnostics import Diagnostic, Problems, ResourceKey
from sidelight_operator.compile.guardrail import build_guardrail
from sidelight_operator.compile.llmquota import build_quota
from sidelight_operator.compile.llmroute import build_route_set
from sidelight_operator.compile.reader import Reader
from sidelight_operator.compile.secrets import SecretIndex
from sidelight_proto.v1 import snapshot_pb2

LLMROUTE = "LLMRoute"
GUARDRAIL = "Guardrail"
LLMQUOTA = "LLMQuota"
API_VERSION = "sidelight.io/v1alpha1"
RESOURCE_FIELDS = ("apiVersion", "kind", "metadata", "spec", "status")

PartT = TypeVar("PartT", bound=Message)


@dataclass(frozen=True)
class CompiledKind(Generic[PartT]):
    """How one kind becomes part of the Snapshot."""

    build: Callable[[snapshot_pb2.ResourceRef, object, Reader, SecretIndex], PartT]
    """The part of one resource, from its source, spec, a reader and the Secrets."""
    parts: Callable[[snapshot_pb2.Snapshot], MutableSequence[PartT]]
    """The Snapshot's repeated field that holds the parts of this kind."""


COMPILED: dict[str, CompiledKind[Any]] = {
    LLMROUTE: CompiledKind(
        lambda source, spec, reader, secrets: build_route_set(source, spec, secrets, reader),
        lambda snapshot: snapshot.route_sets,
    ),
    GUARDRAIL: CompiledKind(
        lambda source, spec, reader, _: build_guardrail(source, spec, reader),
        lambda snapshot: snapshot.guardrails,
    ),
    LLMQUOTA: CompiledKind(
        lambda source, spec, reader, _: build_quota(source, spec, reader),
        lambda snapshot: snapshot.quotas,
    ),
}


@dataclass(frozen=True)
class CompileResult:
    """The snapshot (kept out of repr: it holds keys), diagnostics and acceptance."""

    snapshot: snapshot_pb2.Snapshot = field(repr=False)
    diagnostics: list[Diagnostic]
    accepted: dict[ResourceKey, bool]


def compile_snapshot(resources: Sequence[Mapping[str, Any]]) -> CompileResult:
    """Compile the resources of every kind in `COMPILED` (and their Secrets) into one Snapshot."""
    secrets = SecretIndex(r for r in resources if _is_secret(r))
    counts = Counter(_key(r) for r in resources)
    snapshot = snapshot_pb2.Snapshot()
    diagnostics: list[Diagnostic] = []
    accepted: dict[ResourceKey, bool] = {}
    for kind, compiled in COMPILED.items():
        for resource in sorted((r for r in resources if r.get("kind") == kind), key=_key):
            key = _key(resource)
            problems = Problems()
            if counts[key] > 1:
                problems.error("metadata.name", f"{key[1]}/{key[2]} is defined more than once")
            part = _compile(resource, compiled, secrets, problems)
            accepted[key] = not problems.has_errors
            diagnostics.extend(problems.for_resource(key))
            if accepted[key] and part is not None:
                compiled.parts(snapshot).append(part)
    others = (r for r in resources if r.get("kind") not in COMPILED and not _is_secret(r))
    for resource in sorted(others, key=_key):
        kind = str(resource.get("kind", ""))
        diagnostics.append(
            Diagnostic(
                kind,
                *_key(resource)[1:],
                field="kind",
                message=f"{resource.get('apiVersion')} {kind} is not compiled; ignored",
                severity="warning",
            )
        )
    snapshot.version = snapshot_version(snapshot)
    return CompileResult(snapshot, diagnostics, accepted)


def snapshot_version(snapshot: snapshot_pb2.Snapshot) -> str:
    """The content hash of `snapshot`, whatever its current version field holds."""
    content = snapshot_pb2.Snapshot()
    content.CopyFrom(snapshot)
    content.ClearField("version")
    return hashlib.sha256(content.SerializeToString(deterministic=True)).hexdigest()[:16]


def _compile(
    resource: Mapping[str, Any],
    compiled: CompiledKind[PartT],
    secrets: SecretIndex,
    problems: Problems,
) -> PartT | None:
    """The part of one resource (None without a spec); its problems go to `problems`."""
    reader = Reader(problems)
    top = reader.obj(resource, "", RESOURCE_FIELDS, required=("metadata", "spec")) or {}
    if top.get("apiVersion") != API_VERSION:
        problems.error("apiVersion", f"must be {API_VERSION}")
    meta = top.get("metadata")
    for name in ("namespace", "name"):
        if not isinstance(meta, Mapping) or not isinstance(meta.get(name), str) or not meta[name]:
            problems.error(f"metadata.{name}", "is required")
    generation = meta.get("generation") if isinstance(meta, Mapping) else None
    kind, namespace, name = _key(resource)
    source = snapshot_pb2.ResourceRef(
        kind=kind,
        namespace=namespace,
        name=name,
        generation=generation if isinstance(generation, int) else 0,
    )
    if "spec" not in top:
        return None
    return compiled.build(source, top["spec"], reader, secrets)


def _key(resource: Mapping[str, Any]) -> ResourceKey:
    meta = resource.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    namespace, name = meta.get("namespace"), meta.get("name")
    return (
        str(resource.get("kind", "")),
        namespace if isinstance(namespace, str) else "",
        name if isinstance(name, str) else "",
    )


def _is_secret(resource: Mapping[str, Any]) -> bool:
    return resource.get("apiVersion") == "v1" and resource.get("kind") == "Secret"
