"""A JSON Patch (RFC 6902) from one JSON document to another.

The injection builds the new pod; this diff says how to get there, so the
webhook's patch and the offline command's output can never disagree. Maps
are compared key by key; a list that only grew at its end or its start gets
`add` operations, a list of the same length is compared item by item, and
any other list is replaced whole.
"""

from __future__ import annotations

from typing import Any

Patch = list[dict[str, Any]]


def escape(key: str) -> str:
    """A JSON Pointer reference token (RFC 6901): `~` is `~0`, `/` is `~1`."""
    return key.replace("~", "~0").replace("/", "~1")


def build_json_patch(before: Any, after: Any, path: str = "") -> Patch:
    """The operations that turn `before` into `after`."""
    if isinstance(before, dict) and isinstance(after, dict):
        return _diff_maps(before, after, path)
    if isinstance(before, list) and isinstance(after, list):
        return _diff_lists(before, after, path)
    if before == after and type(before) is type(after):
        return []
    return [{"op": "replace", "path": path, "value": after}]


def _diff_maps(before: dict[str, Any], after: dict[str, Any], path: str) -> Patch:
    ops: Patch = []
    for key in before:
        if key not in after:
            ops.append({"op": "remove", "path": f"{path}/{escape(key)}"})
    for key, value in after.items():
        where = f"{path}/{escape(key)}"
        if key in before:
            ops += build_json_patch(before[key], value, where)
        else:
            ops.append({"op": "add", "path": where, "value": value})
    return ops


def _diff_lists(before: list[Any], after: list[Any], path: str) -> Patch:
    grown = len(after) - len(before)
    if grown == 0:
        ops: Patch = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            ops += build_json_patch(old, new, f"{path}/{index}")
        return ops
    if grown > 0 and after[: len(before)] == before:
        return [{"op": "add", "path": f"{path}/-", "value": v} for v in after[len(before) :]]
    if grown > 0 and after[grown:] == before:
        return [
            {"op": "add", "path": f"{path}/{i}", "value": v} for i, v in enumerate(after[:grown])
        ]
    return [{"op": "replace", "path": path, "value": after}]
