"""The injection: a pure function from a pod (and its namespace) to the injected pod.

`inject_pod` is what the admission webhook and `sidelight inject` both run.
It reads nothing and writes nothing: the caller brings the Namespace, the
keys of the pod's envFrom sources (`EnvSources`) and the configuration.
Running it on its own output changes nothing (`sidelight.io/injected`).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sidelight_operator.inject.config import InjectionConfig
from sidelight_operator.inject.env import EnvSources, build_app_env
from sidelight_operator.inject.patch import Patch, build_json_patch
from sidelight_operator.inject.sidecar import (
    CA_ANNOTATION,
    IDENTITY_VOLUME,
    SIDECAR_NAME,
    STATE_VOLUME,
    build_sidecar_container,
    build_volumes,
)

INJECT = "sidelight.io/inject"
"""On a Namespace (annotation or label): `enabled` opts its pods in. On a pod: `disabled`."""
INJECTED = "sidelight.io/injected"
"""The marker the injection leaves on the pods it changed."""
OPERATOR_LABEL = "sidelight.io/operator"
"""Carried by the operator's own pods, which are never injected."""
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"


@dataclass(frozen=True)
class InjectionResult:
    """The pod after injection, the JSON Patch that makes it, or why nothing changed."""

    pod: dict[str, Any]
    patch: Patch = field(default_factory=list)
    skipped_reason: str | None = None
    warnings: tuple[str, ...] = ()


def _flag(meta: Mapping[str, Any], key: str = INJECT) -> str | None:
    """The value of `key` as an annotation, else as a label."""
    for where in ("annotations", "labels"):
        value = (meta.get(where) or {}).get(key)
        if value is not None:
            return str(value).strip().lower()
    return None


def namespace_opted_in(namespace: Mapping[str, Any]) -> bool:
    """Whether the Namespace says `sidelight.io/inject: enabled` (annotation or label)."""
    return _flag(namespace.get("metadata") or {}) == "enabled"


def skip_reason(
    pod: Mapping[str, Any], namespace: Mapping[str, Any], config: InjectionConfig
) -> str | None:
    """Why this pod gets no sidecar, or None if it gets one."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = (namespace.get("metadata") or {}).get("name") or meta.get("namespace") or ""
    if name in config.excluded_namespaces:
        return f"namespace {name} is excluded from injection"
    if OPERATOR_LABEL in (meta.get("labels") or {}):
        return f"the operator's own pod (label {OPERATOR_LABEL})"
    if INJECTED in (meta.get("annotations") or {}):
        return f"already injected (annotation {INJECTED})"
    if _flag(meta) == "disabled":
        return f"the pod opts out ({INJECT}: disabled)"
    if spec.get("hostNetwork"):
        return "host network: the sidecar's 127.0.0.1 would be the node's"
    if not namespace_opted_in(namespace):
        return f"namespace {name} does not opt in ({INJECT}: enabled)"
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    if any(c.get("name") == SIDECAR_NAME for c in containers):
        return f"the pod already has a container named {SIDECAR_NAME}"
    taken = {v.get("name") for v in spec.get("volumes") or []} & {IDENTITY_VOLUME, STATE_VOLUME}
    if taken:
        return f"the pod already has a volume named {sorted(taken)[0]}"
    return None


def inject_pod(
    pod: Mapping[str, Any],
    namespace: Mapping[str, Any],
    config: InjectionConfig,
    *,
    env_sources: EnvSources | None = None,
    workload: str | None = None,
) -> InjectionResult:
    """The pod with the sidecar, or the pod unchanged and the reason.

    `workload` overrides the name taken from the pod's owner (for a pod
    template, whose pods have no owner yet).
    """
    original = copy.deepcopy(dict(pod))
    reason = skip_reason(original, namespace, config)
    if reason is not None:
        return InjectionResult(pod=original, skipped_reason=reason)
    injected = copy.deepcopy(original)
    spec = injected.setdefault("spec", {})
    sidecar = build_sidecar_container(original, config, workload)
    apps: list[dict[str, Any]] = list(spec.get("containers") or [])
    if config.native_sidecar:
        # Init containers after the sidecar run while it serves: they are apps too.
        apps = [*(spec.get("initContainers") or []), *apps]
        spec["initContainers"] = [sidecar, *(spec.get("initContainers") or [])]
    else:
        spec["containers"] = [sidecar, *(spec.get("containers") or [])]
    warnings: list[str] = []
    for container in apps:
        decision = build_app_env(container, config.port, env_sources or {})
        if decision.additions:
            container["env"] = [*(container.get("env") or []), *decision.additions]
        warnings += decision.warnings
    spec["volumes"] = [*(spec.get("volumes") or []), *build_volumes(config)]
    meta = injected.setdefault("metadata", {})
    annotations = meta.setdefault("annotations", {})
    annotations[INJECTED] = "true"
    if config.ca_bundle:
        annotations[CA_ANNOTATION] = config.ca_bundle
    main = spec.get("containers") or []
    if not config.native_sidecar and len(main) > 1 and DEFAULT_CONTAINER not in annotations:
        # The sidecar comes first; `kubectl logs` and `exec` should still mean the app.
        annotations[DEFAULT_CONTAINER] = main[1]["name"]
    return InjectionResult(
        pod=injected, patch=build_json_patch(original, injected), warnings=tuple(warnings)
    )
