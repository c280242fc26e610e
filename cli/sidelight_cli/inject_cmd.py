"""`sidelight inject -f pod.yaml`: the webhook's injection, offline.

Like `istioctl kube-inject`, it reads manifests (files, or `-` for stdin)
and writes them back with the sidecar injected: Pods, and the pod templates
of Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and
ReplicationControllers; `List`s are walked; everything else is copied.
It runs the webhook's own function (`sidelight_operator.inject.inject_pod`)
as if the namespace had opted in. The keys of ConfigMaps and Secrets found in
the same input count as known envFrom sources; any other source is unknown,
and the variables it may define are left alone (see docs/injection.md).

The configuration is the chart's injection document (`--config`, e.g. from
`kubectl get configmap sidelight-injection -n sidelight-system -o
jsonpath='{.data.config\\.yaml}'`) or the chart's defaults, and the flags
override either. The control plane's CA is `--ca-file` (the `ca.crt` of
Secret `sidelight-operator-tls`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from sidelight_operator.inject import InjectionConfig, build_injection_config, inject_pod
from sidelight_operator.inject.env import EnvSourceRef
from sidelight_operator.inject.pod import INJECT

TEMPLATE_PATHS = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def _version() -> str:
    try:
        return metadata.version("sidelight")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def default_document() -> dict[str, Any]:
    """The chart's default injection settings (tests/contract checks they agree)."""
    return {
        "image": f"ghcr.io/sidelight/sidecar:{_version()}",
        "controlPlane": "sidelight-operator.sidelight-system.svc:8443",
        "port": 4000,
        "excludedNamespaces": ["sidelight-system"],
    }


def add_inject_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `inject` to the `sidelight` sub-commands; its handler is `args.run`."""
    cmd = subparsers.add_parser(
        "inject",
        help="inject the sidecar into manifests, offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "-f", "--filename", dest="files", action="append", required=True,
        help="a manifest file, or - for stdin (repeatable)",
    )  # fmt: skip
    cmd.add_argument("-o", "--output", type=Path, default=None, help="default: stdout")
    cmd.add_argument("--config", type=Path, default=None, help="the chart's injection document")
    cmd.add_argument("--image", default=None, help="the sidecar image")
    cmd.add_argument("--control-plane", default=None, metavar="HOST:PORT")
    cmd.add_argument("--port", type=int, default=None, help="the sidecar's port on 127.0.0.1")
    cmd.add_argument(
        "--ca-file", type=Path, default=None, help="PEM CA of the control plane's certificate"
    )
    cmd.add_argument(
        "--kubernetes-version", default="1.29", metavar="MAJOR.MINOR",
        help="the cluster's version: 1.29 and later get a native sidecar (default 1.29)",
    )  # fmt: skip
    cmd.add_argument(
        "-n", "--namespace", default="default", help="for objects that name none (default)"
    )
    cmd.set_defaults(run=run_inject)


def _documents(files: list[str]) -> list[Any]:
    documents = []
    for name in files:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
        documents += [d for d in yaml.safe_load_all(text) if d]
    return documents


def _walk(documents: list[Any]) -> Iterator[dict[str, Any]]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "List":
            yield from _walk(document.get("items") or [])
        elif isinstance(document, dict):
            yield document


def env_sources_of(documents: list[Any]) -> dict[str, dict[EnvSourceRef, frozenset[str]]]:
    """Keys of the ConfigMaps and Secrets in the input, by namespace and (kind, name)."""
    found: dict[str, dict[EnvSourceRef, frozenset[str]]] = {}
    fields = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}
    for document in _walk(documents):
        kind = document.get("kind")
        if kind not in fields:
            continue
        meta = document.get("metadata") or {}
        keys = frozenset(k for f in fields[kind] for k in document.get(f) or {})
        namespace = found.setdefault(meta.get("namespace") or "", {})
        namespace[(str(kind).lower(), str(meta.get("name")))] = keys
    return found


def _config(args: argparse.Namespace) -> InjectionConfig:
    document = default_document()
    if args.config is not None:
        document = yaml.safe_load(args.config.read_text()) or {}
    overrides = {"image": args.image, "controlPlane": args.control_plane, "port": args.port}
    document.update({k: v for k, v in overrides.items() if v is not None})
    ca_bundle = args.ca_file.read_text() if args.ca_file is not None else None
    if ca_bundle is None:
        print(
            "sidelight inject: no --ca-file: the sidecars get no --ca, and refuse a control "
            "plane off loopback",
            file=sys.stderr,
        )
    major, _, minor = str(args.kubernetes_version).partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise SystemExit(f"sidelight inject: --kubernetes-version {args.kubernetes_version!r}")
    version = (int(major), int(minor))
    return build_injection_config(document, server_version=version, ca_bundle=ca_bundle)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (a CA, a probe's script) as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(documents: list[Any]) -> str:
    """Documents as a YAML stream, in the order their keys were written."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False)


def _template(document: dict[str, Any]) -> dict[str, Any] | None:
    path = TEMPLATE_PATHS.get(str(document.get("kind")))
    node: Any = document
    for key in path or ():
        node = node.get(key) if isinstance(node, dict) else None
    return node if path and isinstance(node, dict) else None


def run_inject(args: argparse.Namespace) -> int:
    """Inject into every pod and pod template of the input; report skips on stderr."""
    config = _config(args)
    documents = _documents(args.files)
    sources = env_sources_of(documents)
    for document in _walk(documents):
        meta = document.get("metadata") or {}
        name = f"{document.get('kind')}/{meta.get('name')}"
        namespace_name = meta.get("namespace") or args.namespace
        namespace = {"metadata": {"name": namespace_name, "annotations": {INJECT: "enabled"}}}
        in_namespace = {**sources.get("", {}), **sources.get(namespace_name, {})}
        template = _template(document)
        if document.get("kind") == "Pod":
            target, workload = document, None
        elif template is not None:
            target, workload = template, str(meta.get("name") or "")
        else:
            continue
        result = inject_pod(target, namespace, config, env_sources=in_namespace, workload=workload)
        for warning in result.warnings:
            print(f"sidelight inject: {name}: {warning}", file=sys.stderr)
        if result.skipped_reason is not None:
            print(
                f"sidelight inject: {name}: not injected: {result.skipped_reason}", file=sys.stderr
            )
            continue
        target.clear()
        target.update(result.pod)
    text = dump_yaml(documents)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
