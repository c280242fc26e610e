"""What a kubelet would give one container, computed from the pod spec, without I/O.

Pods are camelCase dicts, as the API serves them. Secrets, ConfigMaps and
service-account tokens come from an `ObjectSource`, so the same code runs
against the API server (`kubelet.py`) and against a dict in unit tests.

Follows the kubelet: `envFrom` first, then `env` (which wins); `$(VAR)`
references in `env` values, `command` and `args` are expanded against the
variables defined before them, `$$` is a literal `$`, an unknown reference
stays as written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

Pod = Mapping[str, Any]

DEFAULT_FILE_MODE = 0o644
DEFAULT_TOKEN_EXPIRATION = 3600
LOOPBACK = "127.0.0.1"


class UnsupportedPodSpecError(ValueError):
    """The pod spec uses something the fake kubelet does not do."""


class MissingObjectError(LookupError):
    """A Secret, ConfigMap or key the pod needs is missing and not optional."""


class ObjectSource(Protocol):
    """Where Secrets, ConfigMaps and tokens come from."""

    def secret(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The Secret's data (decoded), or None if it does not exist."""
        ...

    def config_map(self, namespace: str, name: str) -> Mapping[str, bytes] | None:
        """The ConfigMap's data and binaryData, or None if it does not exist."""
        ...

    def service_account_token(self, pod: Pod, audience: str | None, expiration: int) -> str:
        """A token for the pod's service account (TokenRequest)."""
        ...


@dataclass(frozen=True)
class File:
    """One file of a materialised volume."""

    data: bytes
    mode: int = DEFAULT_FILE_MODE


@dataclass(frozen=True)
class Mount:
    """A volumeMount: where the container sees which part of which volume."""

    mount_path: str
    volume: str
    sub_path: str = ""


def find_container(pod: Pod, name: str) -> Mapping[str, Any]:
    """The container or init container called `name`."""
    spec = pod.get("spec") or {}
    for key in ("containers", "initContainers"):
        for container in spec.get(key) or []:
            if container.get("name") == name:
                return dict(container)
    names = [c.get("name") for k in ("containers", "initContainers") for c in spec.get(k) or []]
    raise KeyError(f"pod {_pod_name(pod)} has no container {name!r} (it has {names})")


def _pod_name(pod: Pod) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _namespace(pod: Pod) -> str:
    namespace: str = (pod.get("metadata") or {}).get("namespace") or "default"
    return namespace


def expand(value: str, variables: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion."""
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "$" and i + 1 < len(value):
            following = value[i + 1]
            if following == "$":
                out.append("$")
                i += 2
                continue
            if following == "(":
                close = value.find(")", i + 2)
                if close != -1:
                    name = value[i + 2 : close]
                    out.append(variables.get(name, value[i : close + 1]))
                    i = close + 1
                    continue
        out.append(char)
        i += 1
    return "".join(out)


_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Pod, field_path: str, *, whole_maps: bool = False) -> str:
    """The value of a downward-API fieldRef, as the kubelet renders it.

    The process runs on this machine, so status.podIP and status.hostIP are
    127.0.0.1. `whole_maps` allows metadata.labels and metadata.annotations
    (downwardAPI volumes only).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": _namespace(pod),
        "metadata.uid": meta.get("uid", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "spec.nodeName": spec.get("nodeName") or "",
        "status.podIP": LOOPBACK,
        "status.podIPs": LOOPBACK,
        "status.hostIP": LOOPBACK,
        "status.hostIPs": LOOPBACK,
    }
    if field_path in simple:
        return str(simple[field_path])
    match = _SUBSCRIPT.match(field_path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    if whole_maps and field_path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f"{key}={json.dumps(values[key])}" for key in sorted(values))
    raise UnsupportedPodSpecError(f"fieldRef {field_path!r} is not supported by the fake kubelet")


def _resource_field_error(where: str) -> UnsupportedPodSpecError:
    return UnsupportedPodSpecError(
        f"{where}: resourceFieldRef is not supported by the fake kubelet (no cgroups, "
        "no resource limits); use a plain value in the test pod"
    )


def _lookup(
    source: ObjectSource, kind: str, namespace: str, name: str
) -> Mapping[str, bytes] | None:
    if kind == "secret":
        return source.secret(namespace, name)
    return source.config_map(namespace, name)


def _key_ref(
    pod: Pod, source: ObjectSource, kind: str, ref: Mapping[str, Any], var: str
) -> str | None:
    data = _lookup(source, kind, _namespace(pod), ref["name"])
    optional = bool(ref.get("optional"))
    if data is None or ref["key"] not in data:
        if optional:
            return None
        what = f"{kind} {_namespace(pod)}/{ref['name']}"
        missing = what if data is None else f"key {ref['key']!r} of {what}"
        raise MissingObjectError(f"env {var}: {missing} not found")
    return data[ref["key"]].decode()


def resolve_env(
    pod: Pod,
    container: Mapping[str, Any],
    source: ObjectSource,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The container's environment as the pod spec defines it.

    `base` (the service variables a kubelet adds) is visible to `$(VAR)`
    expansion but is not part of the result.
    """
    env: dict[str, str] = {}
    for entry in container.get("envFrom") or []:
        prefix = entry.get("prefix") or ""
        kind, ref = (
            ("secret", entry.get("secretRef"))
            if entry.get("secretRef")
            else (
                "configmap",
                entry.get("configMapRef"),
            )
        )
        if ref is None:
            raise UnsupportedPodSpecError(f"envFrom entry {entry} has no secretRef/configMapRef")
        data = _lookup(source, kind, _namespace(pod), ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise MissingObjectError(f"envFrom: {kind} {_namespace(pod)}/{ref['name']} not found")
        for key, value in data.items():
            env[prefix + key] = value.decode()
    for var in container.get("env") or []:
        name = var["name"]
        value_from = var.get("valueFrom")
        if value_from is None:
            env[name] = expand(var.get("value") or "", {**(base or {}), **env})
            continue
        resolved: str | None
        if "secretKeyRef" in value_from:
            resolved = _key_ref(pod, source, "secret", value_from["secretKeyRef"], name)
        elif "configMapKeyRef" in value_from:
            resolved = _key_ref(pod, source, "configmap", value_from["configMapKeyRef"], name)
        elif "fieldRef" in value_from:
            resolved = field_value(pod, value_from["fieldRef"]["fieldPath"])
        elif "resourceFieldRef" in value_from:
            raise _resource_field_error(f"env {name}")
        else:
            raise UnsupportedPodSpecError(f"env {name}: unsupported valueFrom {value_from}")
        if resolved is not None:
            env[name] = resolved
    return env


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """command + args with `$(VAR)` expanded. The image's entrypoint is unknown here."""
    command = list(container.get("command") or [])
    if not command:
        raise UnsupportedPodSpecError(
            f"container {container.get('name')!r} has no command: the fake kubelet cannot "
            "know the image's entrypoint; give the container an explicit command"
        )
    return [expand(part, env) for part in [*command, *(container.get("args") or [])]]


def mounts(container: Mapping[str, Any], env: Mapping[str, str]) -> list[Mount]:
    """The container's volumeMounts (subPathExpr expanded against its env)."""
    result = []
    for mount in container.get("volumeMounts") or []:
        sub_path = mount.get("subPath") or expand(mount.get("subPathExpr") or "", env)
        result.append(Mount(mount["mountPath"].rstrip("/") or "/", mount["name"], sub_path))
    return result


def _items(
    data: Mapping[str, bytes],
    items: Sequence[Mapping[str, Any]] | None,
    default_mode: int,
    what: str,
    optional: bool,
) -> dict[str, File]:
    if not items:
        return {key: File(value, default_mode) for key, value in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise MissingObjectError(f"{what}: key {item['key']!r} not found")
        files[item["path"]] = File(data[item["key"]], item.get("mode") or default_mode)
    return files


def _object_files(
    pod: Pod, source: ObjectSource, kind: str, spec: Mapping[str, Any], mode: int
) -> dict[str, File]:
    name = spec.get("secretName") or spec.get("name") or ""
    optional = bool(spec.get("optional"))
    what = f"{kind} {_namespace(pod)}/{name}"
    data = _lookup(source, kind, _namespace(pod), name)
    if data is None:
        if optional:
            return {}
        raise MissingObjectError(f"volume source {what} not found")
    return _items(data, spec.get("items"), spec.get("defaultMode") or mode, what, optional)


def _downward_files(pod: Pod, spec: Mapping[str, Any], mode: int) -> dict[str, File]:
    files = {}
    for item in spec.get("items") or []:
        if "resourceFieldRef" in item:
            raise _resource_field_error(f"downwardAPI item {item['path']!r}")
        value = field_value(pod, item["fieldRef"]["fieldPath"], whole_maps=True)
        files[item["path"]] = File(value.encode(), item.get("mode") or mode)
    return files


def volume_files(
    pod: Pod, volume: Mapping[str, Any], source: ObjectSource
) -> dict[str, File] | None:
    """The files of one pod volume (relative path -> File); None for an emptyDir."""
    name = volume.get("name")
    if "emptyDir" in volume:
        return None
    if "secret" in volume:
        return _object_files(pod, source, "secret", volume["secret"], DEFAULT_FILE_MODE)
    if "configMap" in volume:
        return _object_files(pod, source, "configmap", volume["configMap"], DEFAULT_FILE_MODE)
    if "downwardAPI" in volume:
        spec = volume["downwardAPI"]
        return _downward_files(pod, spec, spec.get("defaultMode") or DEFAULT_FILE_MODE)
    if "projected" in volume:
        return _projected_files(pod, volume["projected"], source)
    kinds = sorted(set(volume) - {"name"})
    raise UnsupportedPodSpecError(
        f"volume {name!r}: {kinds} is not supported by the fake kubelet (secret, configMap, "
        "emptyDir, downwardAPI and projected are)"
    )


def _projected_files(pod: Pod, spec: Mapping[str, Any], source: ObjectSource) -> dict[str, File]:
    mode = spec.get("defaultMode") or DEFAULT_FILE_MODE
    files: dict[str, File] = {}
    for item in spec.get("sources") or []:
        if "secret" in item:
            files.update(_object_files(pod, source, "secret", item["secret"], mode))
        elif "configMap" in item:
            files.update(_object_files(pod, source, "configmap", item["configMap"], mode))
        elif "downwardAPI" in item:
            files.update(_downward_files(pod, item["downwardAPI"], mode))
        elif "serviceAccountToken" in item:
            token_spec = item["serviceAccountToken"]
            expiration = token_spec.get("expirationSeconds") or DEFAULT_TOKEN_EXPIRATION
            token = source.service_account_token(pod, token_spec.get("audience"), int(expiration))
            files[token_spec["path"]] = File(token.encode(), mode)
        else:
            raise UnsupportedPodSpecError(
                f"projected source {sorted(item)} is not supported by the fake kubelet"
            )
    return files


def rewrite_paths(value: str, mount_map: Mapping[str, str]) -> str:
    """Replace each occurrence of a container mount path with its host path.

    The longest mount path wins, and a mount path matches only up to a path
    boundary: `/etc/app` is rewritten in `/etc/app/x` but not in `/etc/apple`.
    """
    if not mount_map:
        return value
    ordered = sorted((p for p in mount_map if p != "/"), key=len, reverse=True)
    if not ordered:
        return value
    pattern = re.compile("(" + "|".join(re.escape(p) for p in ordered) + r")(?![\w.-])")
    return pattern.sub(lambda match: mount_map[match.group(1)], value)
