"""Which resources apply to one pod: namespace plus LabelSelector semantics.

The operator gives each sidecar only what applies to its pod: resources of
the pod's namespace whose `spec.podSelector` matches the pod's labels (no
selector: the whole namespace), and the Secrets of that namespace that the
selected LLMRoutes reference, so no pod receives another team's keys.

A selector that is malformed is treated as matching, so that the resource
reaches the compile step, which rejects it with a diagnostic, rather than
vanishing without a word. `read_selector` is that check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sidelight_operator.compile.reader import Reader, child

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_MATCH_LABELS = 64
MAX_MATCH_EXPRESSIONS = 32
MAX_VALUES = 64
MAX_LABEL_KEY = 317  # a 253-character prefix, "/", a 63-character name
MAX_LABEL_VALUE = 63


def select_for_pod(
    resources: Sequence[Mapping[str, Any]], namespace: str, labels: Mapping[str, str]
) -> list[Mapping[str, Any]]:
    """The resources that apply to a pod in `namespace` with `labels`, in input order."""
    selected = [
        r
        for r in resources
        if not _is_secret(r) and _namespace(r) == namespace and _applies(r, labels)
    ]
    chosen = {id(r) for r in selected}
    wanted = {
        name for r in selected if r.get("kind") == "LLMRoute" for name in referenced_secrets(r)
    }
    return [
        r
        for r in resources
        if id(r) in chosen or (_is_secret(r) and _namespace(r) == namespace and _name(r) in wanted)
    ]


def read_selector(reader: Reader, value: object, path: str) -> None:
    """Record every way `value` fails to be a valid LabelSelector."""
    sel = reader.obj(value, path, ("matchLabels", "matchExpressions"))
    if sel is None:
        return
    match_labels = sel.get("matchLabels", {})
    where = child(path, "matchLabels")
    if not isinstance(match_labels, Mapping):
        reader.problems.error(where, "must be an object")
    elif len(match_labels) > MAX_MATCH_LABELS:
        reader.problems.error(where, f"must have at most {MAX_MATCH_LABELS} labels")
    else:
        for key, label in match_labels.items():
            if not _is_label_value(label):
                reader.problems.error(
                    f"{where}[{key}]", f"must be a string of at most {MAX_LABEL_VALUE} characters"
                )
    exprs = reader.array(sel, "matchExpressions", path, max_items=MAX_MATCH_EXPRESSIONS)
    for i, item in enumerate(exprs):
        _read_expression(reader, item, f"{path}.matchExpressions[{i}]")


def _read_expression(reader: Reader, value: object, path: str) -> None:
    expr = reader.obj(value, path, ("key", "operator", "values"), required=("key", "operator"))
    if expr is None:
        return
    reader.string(expr, "key", path, max_length=MAX_LABEL_KEY)
    operator = reader.string(expr, "operator", path, max_length=16, enum=OPERATORS)
    values = reader.array(expr, "values", path, max_items=MAX_VALUES)
    for i, item in enumerate(values):
        if not _is_label_value(item):
            reader.problems.error(
                f"{path}.values[{i}]", f"must be a string of at most {MAX_LABEL_VALUE} characters"
            )
    if operator in ("In", "NotIn") and not values:
        reader.problems.error(child(path, "values"), f"must not be empty for operator {operator}")
    elif operator in ("Exists", "DoesNotExist") and values:
        reader.problems.error(child(path, "values"), f"must be empty for operator {operator}")


def _is_label_value(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_LABEL_VALUE


def _applies(resource: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    spec = resource.get("spec")
    selector = spec.get("podSelector") if isinstance(spec, Mapping) else None
    if selector is None:
        return True
    if not isinstance(selector, Mapping):
        return True  # malformed: let compile reject it
    match_labels = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(exprs, list):
        return True
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    return all(_expression_holds(e, labels) for e in exprs)


def _expression_holds(expr: object, labels: Mapping[str, str]) -> bool:
    if not isinstance(expr, Mapping):
        return True  # malformed: let compile reject it
    key, operator, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if not isinstance(key, str) or not isinstance(values, list):
        return True
    if operator == "In":
        return key in labels and labels[key] in values
    if operator == "NotIn":
        return key not in labels or labels[key] not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return True  # unknown operator: let compile reject it


def referenced_secrets(resource: Mapping[str, Any]) -> set[str]:
    """Names of the Secrets (of its own namespace) that a resource references."""
    spec = resource.get("spec")
    backends = spec.get("backends") if isinstance(spec, Mapping) else None
    names: set[str] = set()
    for backend in backends if isinstance(backends, list) else []:
        credentials = backend.get("credentials") if isinstance(backend, Mapping) else None
        ref = credentials.get("secretRef") if isinstance(credentials, Mapping) else None
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return names


def _is_secret(resource: Mapping[str, Any]) -> bool:
    return resource.get("apiVersion") == "v1" and resource.get("kind") == "Secret"


def _meta(resource: Mapping[str, Any], field: str) -> object:
    meta = resource.get("metadata")
    return meta.get(field) if isinstance(meta, Mapping) else None


def _namespace(resource: Mapping[str, Any]) -> object:
    return _meta(resource, "namespace")


def _name(resource: Mapping[str, Any]) -> object:
    return _meta(resource, "name")
