"""Who the sidecar says it is to the control plane: a `Node` from the pod's environment.

The injected pod spec sets SIDELIGHT_POD_NAME, SIDELIGHT_POD_NAMESPACE,
SIDELIGHT_POD_UID and SIDELIGHT_SERVICE_ACCOUNT through the downward API, and
mounts the pod's labels as a downward-API file (`key="value"` per line). In a
cluster these are claims only: the operator binds the stream to the pod its
service-account token proves, whatever the node says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from sidelight_proto.v1 import control_plane_pb2


def node_from_env(
    env: Mapping[str, str] | None = None, labels_path: Path | None = None
) -> control_plane_pb2.Node:
    """The Node of this pod: identity from `env`, labels from the downward-API file."""
    env = os.environ if env is None else env
    return control_plane_pb2.Node(
        pod=env.get("SIDELIGHT_POD_NAME", ""),
        namespace=env.get("SIDELIGHT_POD_NAMESPACE", ""),
        uid=env.get("SIDELIGHT_POD_UID", ""),
        service_account=env.get("SIDELIGHT_SERVICE_ACCOUNT", ""),
        build=build(),
        labels=read_labels(labels_path) if labels_path is not None else {},
    )


def read_labels(path: Path) -> dict[str, str]:
    """Labels from a downward-API file: one `key="value"` per line, values quoted."""
    labels: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = value[1:-1]
        labels[key.strip()] = value
    return labels


def build() -> str:
    """This sidecar's build, as the control plane sees it: `sidelight/<version>`."""
    try:
        return f"sidelight/{metadata.version('sidelight')}"
    except metadata.PackageNotFoundError:
        return "sidelight/dev"
