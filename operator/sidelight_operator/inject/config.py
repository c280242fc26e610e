"""What the injection needs to know: the sidecar image, its port, the control plane.

`InjectionConfig` is the input of the pure injection besides the pod and its
namespace. The operator builds it from the chart's ConfigMap
(`build_injection_config`, camelCase keys as in the chart's values) plus the
API server's version; `sidelight inject` builds it from the same file or
from flags.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SYSTEM_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease"})
NATIVE_SIDECAR_VERSION = (1, 29)
"""Kubernetes from which the sidecar is an init container with restartPolicy Always."""

DEFAULT_RESOURCES: Mapping[str, Any] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}
DEFAULT_SECURITY_CONTEXT: Mapping[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


class ConfigError(ValueError):
    """The injection configuration is not usable."""


@dataclass(frozen=True)
class IdentityLabels:
    """Which pod labels name the team, the application and the environment."""

    team: str = "sidelight.io/team"
    application: str = "app.kubernetes.io/name"
    environment: str = "sidelight.io/environment"


@dataclass(frozen=True)
class InjectionConfig:
    """Everything the injection adds to a pod, besides what the pod itself says."""

    image: str
    control_plane: str
    """HOST:PORT of the operator's ControlPlane, as the sidecar dials it."""
    ca_bundle: str | None = None
    """PEM of the CA the control plane's certificate chains to; None: no --ca."""
    port: int = 4000
    image_pull_policy: str = "IfNotPresent"
    server_version: tuple[int, int] = (1, 29)
    resources: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    security_context: Mapping[str, Any] = field(
        default_factory=lambda: dict(DEFAULT_SECURITY_CONTEXT)
    )
    identity_labels: IdentityLabels = field(default_factory=IdentityLabels)
    otlp_endpoint: str | None = None
    """OTLP/HTTP base URL the sidecar exports its spans to; None: no export."""
    otlp_via_operator: bool = False
    """`otlp_endpoint` is the operator's trace relay: the sidecar proves its pod there."""
    excluded_namespaces: frozenset[str] = SYSTEM_NAMESPACES
    token_audience: str = "sidelight"
    token_expiration_seconds: int = 3600
    fail_closed: bool = False
    """failurePolicy Fail: an error of the webhook denies the pod instead of admitting it."""

    @property
    def native_sidecar(self) -> bool:
        """Whether the API server runs native sidecars (Kubernetes >= 1.29)."""
        return self.server_version >= NATIVE_SIDECAR_VERSION


def parse_server_version(major: str, minor: str) -> tuple[int, int]:
    """(1, 29) from the API server's `major` and `minor` ("29+" on some clouds)."""
    numbers = [re.match(r"\d+", part) for part in (major, minor)]
    if numbers[0] is None or numbers[1] is None:
        raise ConfigError(f"unreadable Kubernetes version {major!r}.{minor!r}")
    return int(numbers[0].group()), int(numbers[1].group())


def build_injection_config(
    document: Mapping[str, Any],
    *,
    server_version: tuple[int, int],
    ca_bundle: str | None = None,
) -> InjectionConfig:
    """An InjectionConfig from the chart's injection document (see the chart's values.yaml).

    `ca_bundle` is the PEM of the control plane's CA (the operator reads it
    from `--control-plane-ca`); without it the sidecar gets no `--ca`.
    """
    known = {
        "image", "imagePullPolicy", "port", "controlPlane", "resources",
        "securityContext", "identityLabels", "otlpEndpoint", "otlpViaOperator",
        "excludedNamespaces",
        "tokenAudience", "tokenExpirationSeconds", "failurePolicy",
    }  # fmt: skip
    unknown = sorted(set(document) - known)
    if unknown:
        raise ConfigError(f"unknown injection settings: {', '.join(unknown)}")
    for required in ("image", "controlPlane"):
        if not document.get(required):
            raise ConfigError(f"injection setting {required!r} is required")
    policy = document.get("failurePolicy", "Ignore")
    if policy not in ("Ignore", "Fail"):
        raise ConfigError(f"failurePolicy must be Ignore or Fail, not {policy!r}")
    labels = document.get("identityLabels") or {}
    unknown_labels = sorted(set(labels) - {"team", "application", "environment"})
    if unknown_labels:
        raise ConfigError(f"unknown identityLabels: {', '.join(unknown_labels)}")
    via_operator = document.get("otlpViaOperator", False)
    if not isinstance(via_operator, bool):
        raise ConfigError(f"otlpViaOperator must be true or false, not {via_operator!r}")
    if via_operator and not document.get("otlpEndpoint"):
        raise ConfigError("otlpViaOperator needs otlpEndpoint (the operator's trace relay)")
    port = int(document.get("port", 4000))
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is not a TCP port")
    return InjectionConfig(
        image=str(document["image"]),
        control_plane=str(document["controlPlane"]),
        ca_bundle=ca_bundle or None,
        port=port,
        image_pull_policy=str(document.get("imagePullPolicy", "IfNotPresent")),
        server_version=server_version,
        resources=document.get("resources") or dict(DEFAULT_RESOURCES),
        security_context=document.get("securityContext") or dict(DEFAULT_SECURITY_CONTEXT),
        identity_labels=IdentityLabels(**{k: str(v) for k, v in labels.items()}),
        otlp_endpoint=document.get("otlpEndpoint") or None,
        otlp_via_operator=via_operator,
        excluded_namespaces=SYSTEM_NAMESPACES | frozenset(document.get("excludedNamespaces", ())),
        token_audience=str(document.get("tokenAudience", "sidelight")),
        token_expiration_seconds=int(document.get("tokenExpirationSeconds", 3600)),
        fail_closed=policy == "Fail",
    )
