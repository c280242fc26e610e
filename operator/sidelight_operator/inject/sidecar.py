"""The parts the injection adds to a pod: the sidecar container and its volumes.

The sidecar runs `sidelight sidecar` (cli/sidelight_cli/sidecar_cmd.py) on
127.0.0.1 only. Its volume `sidelight-identity` is mounted into the sidecar
and nowhere else; it projects

- `token`: a service-account token with audience `sidelight`, bound to the
  pod, that the operator reviews (TokenReview) to know which pod connects;
- `labels`: the pod's labels (downward API), which select its resources;
- `ca.crt`: the control plane's CA, from the pod's own annotation
  `sidelight.io/control-plane-ca` (so no object has to exist in the pod's
  namespace before the pod does).

`sidelight-state` is an emptyDir for the last good snapshot, which the
sidecar serves after a restart while the operator is away.

Spans go to `--otlp-endpoint`. When that is the operator's trace relay
(`otlp_via_operator`), the sidecar proves its pod there as on the control
plane: `SIDELIGHT_OTLP_TOKEN_FILE` names the token and
`OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE` the CA (docs/tracing.md). An
endpoint outside the cluster never gets them: the token is the pod's proof.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from sidelight_operator.inject.config import InjectionConfig

SIDECAR_NAME = "sidelight"
IDENTITY_VOLUME = "sidelight-identity"
STATE_VOLUME = "sidelight-state"
IDENTITY_DIR = "/var/run/sidelight/identity"
STATE_DIR = "/var/run/sidelight/state"
CA_ANNOTATION = "sidelight.io/control-plane-ca"
READ_ONLY_FILES = 0o444
"""The projected files are read by the sidecar's user, whatever the pod's fsGroup."""

# `python` is in the sidecar image; the probe must reach 127.0.0.1 from inside the
# pod, which a kubelet httpGet probe (it dials the pod IP) cannot.
_READY = "import urllib.request as u; u.urlopen('http://127.0.0.1:{port}/readyz', timeout=1)"
_WAIT_READY = (
    "import time, urllib.request as u\n"
    "for _ in range(600):\n"
    "    try:\n"
    "        u.urlopen('http://127.0.0.1:{port}/readyz', timeout=1)\n"
    "        break\n"
    "    except OSError:\n"
    "        time.sleep(0.5)\n"
)
# The ReplicaSet's name is the Deployment's and `-<pod-template-hash>`, in the
# alphabet of Kubernetes' SafeEncodeString.
_TEMPLATE_HASH = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5,10}$")


def build_workload(pod: Mapping[str, Any]) -> str:
    """The workload a pod belongs to: its controller's name, a ReplicaSet's hash trimmed."""
    meta = pod.get("metadata") or {}
    owners = meta.get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else None)
    if owner is None:
        return str(meta.get("name") or (meta.get("generateName") or "").rstrip("-"))
    name = str(owner.get("name") or "")
    if owner.get("kind") == "ReplicaSet":
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        if template_hash and name.endswith(f"-{template_hash}"):
            return name[: -len(template_hash) - 1]
        return _TEMPLATE_HASH.sub("", name)
    return name


def _field(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def build_identity_env(
    pod: Mapping[str, Any], config: InjectionConfig, workload: str | None
) -> list[dict[str, Any]]:
    """The sidecar's identity: downward API, and the workload computed at admission."""
    labels = config.identity_labels
    return [
        _field("SIDELIGHT_POD_NAME", "metadata.name"),
        _field("SIDELIGHT_POD_NAMESPACE", "metadata.namespace"),
        _field("SIDELIGHT_POD_UID", "metadata.uid"),
        _field("SIDELIGHT_SERVICE_ACCOUNT", "spec.serviceAccountName"),
        {"name": "SIDELIGHT_WORKLOAD", "value": workload or build_workload(pod)},
        _field("SIDELIGHT_TEAM", f"metadata.labels['{labels.team}']"),
        _field("SIDELIGHT_APPLICATION", f"metadata.labels['{labels.application}']"),
        _field("SIDELIGHT_ENVIRONMENT", f"metadata.labels['{labels.environment}']"),
    ]


def build_sidecar_args(config: InjectionConfig) -> list[str]:
    """The arguments of `sidelight sidecar`."""
    args = [f"--control-plane={config.control_plane}"]
    if config.ca_bundle:
        args.append(f"--ca={IDENTITY_DIR}/ca.crt")
    args += [
        f"--token-file={IDENTITY_DIR}/token",
        f"--labels-file={IDENTITY_DIR}/labels",
        f"--listen=127.0.0.1:{config.port}",
        f"--snapshot-path={STATE_DIR}/snapshot.pb",
    ]
    if config.otlp_endpoint:
        args.append(f"--otlp-endpoint={config.otlp_endpoint}")
    return args


def build_otlp_env(config: InjectionConfig) -> list[dict[str, Any]]:
    """How the sidecar proves its pod to the operator's trace relay; nothing for others."""
    if not (config.otlp_endpoint and config.otlp_via_operator):
        return []
    env = [{"name": "SIDELIGHT_OTLP_TOKEN_FILE", "value": f"{IDENTITY_DIR}/token"}]
    if config.ca_bundle:
        env.append(
            {"name": "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "value": f"{IDENTITY_DIR}/ca.crt"}
        )
    return env


def build_sidecar_container(
    pod: Mapping[str, Any], config: InjectionConfig, workload: str | None = None
) -> dict[str, Any]:
    """The sidecar: native (an init container that keeps running) or a plain container."""
    python = ["python", "-c"]
    # Native: an init container that keeps running, started before the others.
    native = {"restartPolicy": "Always"} if config.native_sidecar else {}
    container: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "image": config.image,
        "imagePullPolicy": config.image_pull_policy,
        **native,
        "command": ["sidelight", "sidecar"],
        "args": build_sidecar_args(config),
        "env": [*build_identity_env(pod, config, workload), *build_otlp_env(config)],
        "resources": copy.deepcopy(dict(config.resources)),
        "securityContext": copy.deepcopy(dict(config.security_context)),
        "volumeMounts": [
            {"name": IDENTITY_VOLUME, "mountPath": IDENTITY_DIR, "readOnly": True},
            {"name": STATE_VOLUME, "mountPath": STATE_DIR},
        ],
    }
    if config.native_sidecar:
        # The next container starts once this probe succeeds.
        container["startupProbe"] = {
            "exec": {"command": [*python, _READY.format(port=config.port)]},
            "periodSeconds": 1,
            "timeoutSeconds": 2,
            "failureThreshold": 300,
        }
    else:
        # Before native sidecars, a postStart hook holds the next container back.
        wait = _WAIT_READY.format(port=config.port)
        container["lifecycle"] = {"postStart": {"exec": {"command": [*python, wait]}}}
    return container


def build_volumes(config: InjectionConfig) -> list[dict[str, Any]]:
    """The sidecar's two volumes."""
    items: list[dict[str, Any]] = [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]
    if config.ca_bundle:
        items.append(
            {
                "path": "ca.crt",
                "fieldRef": {"fieldPath": f"metadata.annotations['{CA_ANNOTATION}']"},
            }
        )
    token = {
        "audience": config.token_audience,
        "expirationSeconds": config.token_expiration_seconds,
        "path": "token",
    }
    return [
        {
            "name": IDENTITY_VOLUME,
            "projected": {
                "defaultMode": READ_ONLY_FILES,
                "sources": [{"serviceAccountToken": token}, {"downwardAPI": {"items": items}}],
            },
        },
        {"name": STATE_VOLUME, "emptyDir": {"sizeLimit": "64Mi"}},
    ]
