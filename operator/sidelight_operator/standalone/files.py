"""Read Kubernetes resources from YAML files and directories.

This is the file source's I/O edge in standalone mode; it returns plain dicts
shaped like what the Kubernetes API returns, for the pure compile step.

- A file named explicitly is read whatever its extension.
- A directory contributes its `.yaml` and `.yml` files, sorted by name, not
  recursively (as `kubectl apply -f DIR` does), skipping hidden files.
- A file may hold several documents (`---`); empty documents are skipped, and
  a `v1 List` (what `kubectl get -o yaml` prints) contributes its items.
- An object without `metadata.namespace` gets `default`, as `kubectl apply`
  would give it: every kind the file source reads is namespaced.
- A scalar that looks like a date (`apiVersion: 2024-06-01`) stays a string,
  as it does for kubectl.
- A file that cannot be read or parsed is a diagnostic naming the file and
  the line; the documents before the error in that file are still used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from sidelight_operator.compile import Diagnostic

SUFFIXES = (".yaml", ".yml")
DEFAULT_NAMESPACE = "default"
FILE = "File"  # the Diagnostic kind for problems with a file, not a resource


class _KubeLoader(yaml.SafeLoader):
    """YAML as kubectl reads it: timestamps are plain strings."""


def _timestamp_as_string(loader: _KubeLoader, node: yaml.Node) -> str:
    return loader.construct_yaml_str(node)


_KubeLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_string)


def load_resources(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[Diagnostic]]:
    """Every resource in `paths`, and a diagnostic for every file that is broken."""
    resources: list[dict[str, Any]] = []
    diagnostics: list[Diagnostic] = []
    for file in _files(paths, diagnostics):
        resources.extend(_load_file(file, diagnostics))
    return resources, diagnostics


def _files(paths: Sequence[Path], diagnostics: list[Diagnostic]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p
                for p in path.iterdir()
                if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
        elif path.is_file():
            yield path
        else:
            diagnostics.append(_file_problem(path, "no such file or directory"))


def _load_file(path: Path, diagnostics: list[Diagnostic]) -> Iterator[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        diagnostics.append(_file_problem(path, f"cannot read: {exc}"))
        return
    index = 0
    try:
        for index, document in enumerate(yaml.load_all(text, Loader=_KubeLoader), start=1):
            yield from _objects(path, index, document, diagnostics)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else f"document {index}"
        problem = getattr(exc, "problem", None) or str(exc)
        diagnostics.append(_file_problem(path, f"YAML syntax error at {where}: {problem}"))


def _objects(
    path: Path, index: int, document: object, diagnostics: list[Diagnostic]
) -> Iterator[dict[str, Any]]:
    if document is None:
        return
    if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
        diagnostics.append(
            _file_problem(path, f"document {index} is not a Kubernetes object (apiVersion, kind)")
        )
        return
    if document.get("kind") == "List" and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _objects(path, index, item, diagnostics)
        return
    meta = document.setdefault("metadata", {})
    if isinstance(meta, dict) and not meta.get("namespace"):
        meta["namespace"] = DEFAULT_NAMESPACE
    yield document


def _file_problem(path: Path, message: str) -> Diagnostic:
    return Diagnostic(FILE, "", str(path), "", message)
