"""The `spec.routes` of an LLMRoute: ordered rules, first match wins.

A route without `name` is called `route-<index>` (its 0-based position). A
route without `match` is a default that matches every request; routes after
it can never match and get a warning. `taskType`, `userPriority` and `model`
hold one value each in the CRD and become one-element lists in the Snapshot.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from sidelight_operator.compile.reader import Reader, child
from sidelight_proto.v1 import snapshot_pb2

NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
NAME_MESSAGE = "must be letters, digits, '-', '_' or '.', and start and end with a letter or digit"
HEADER_NAME = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")
MAX_NAME = 63
MAX_MODEL = 253
MAX_ROUTES = 64
MAX_FALLBACKS = 8
MAX_HEADERS = 16
MAX_HEADER_NAME = 128
MAX_HEADER_VALUE = 1024
MAX_MATCH_VALUE = 63
MAX_TOKENS = 100_000_000

ROUTE_FIELDS = ("name", "match", "routeTo", "fallbacks")
MATCH_FIELDS = ("taskType", "userPriority", "inputTokensLt", "inputTokensGt", "model", "headers")
HEADER_FIELDS = ("name", "exact", "regex", "present")


def build_routes(
    reader: Reader, spec: Mapping[str, Any], backends: Collection[str]
) -> list[snapshot_pb2.Route]:
    """The routes of `spec`, checked against the backend names `backends`."""
    items = reader.array(spec, "routes", "spec", min_items=1, max_items=MAX_ROUTES)
    routes: list[snapshot_pb2.Route] = []
    names: dict[str, str] = {}
    default_at = ""
    for i, item in enumerate(items):
        path = f"spec.routes[{i}]"
        route = _route(reader, item, path, i, backends)
        if route is None:
            continue
        if route.name in names:
            also = f"{route.name!r} (also {names[route.name]})"
            reader.problems.error(child(path, "name"), f"duplicate route name {also}")
        names.setdefault(route.name, path)
        if default_at:
            reader.problems.warning(
                path, f"unreachable: {default_at} has no match and matches every request"
            )
        elif not route.HasField("match"):
            default_at = path
        routes.append(route)
    return routes


def _route(
    reader: Reader, value: object, path: str, index: int, backends: Collection[str]
) -> snapshot_pb2.Route | None:
    r = reader.obj(value, path, ROUTE_FIELDS, required=("routeTo",))
    if r is None:
        return None
    name = reader.string(
        r, "name", path, max_length=MAX_NAME, pattern=NAME, pattern_message=NAME_MESSAGE
    )
    route_to = reader.string(r, "routeTo", path, max_length=MAX_NAME)
    if route_to is not None and route_to not in backends:
        reader.problems.error(
            child(path, "routeTo"), f"names no backend in spec.backends: {route_to!r}"
        )
    fallbacks = reader.array(r, "fallbacks", path, max_items=MAX_FALLBACKS)
    for k, fallback in enumerate(fallbacks):
        where = f"{path}.fallbacks[{k}]"
        if not isinstance(fallback, str):
            reader.problems.error(where, "must be a string")
        elif fallback not in backends:
            reader.problems.error(where, f"names no backend in spec.backends: {fallback!r}")
        elif fallback == route_to:
            reader.problems.error(where, f"repeats routeTo {fallback!r}")
        elif fallback in fallbacks[:k]:
            reader.problems.error(where, f"repeats fallback {fallback!r}")
    route = snapshot_pb2.Route(
        name=name or f"route-{index}",
        route_to=route_to or "",
        fallbacks=[f for f in fallbacks if isinstance(f, str)],
    )
    if "match" in r:
        route.match.CopyFrom(_match(reader, r["match"], child(path, "match")))
    return route


def _match(reader: Reader, value: object, path: str) -> snapshot_pb2.Match:
    match = snapshot_pb2.Match()
    m = reader.obj(value, path, MATCH_FIELDS)
    if m is None:
        return match
    if not m:
        reader.problems.error(
            path, "must set at least one condition (leave match out for a default route)"
        )
    task_type = reader.string(m, "taskType", path, max_length=MAX_MATCH_VALUE)
    priority = reader.string(m, "userPriority", path, max_length=MAX_MATCH_VALUE)
    model = reader.string(m, "model", path, max_length=MAX_MODEL)
    lt = reader.integer(
        m,
        "inputTokensLt",
        path,
        minimum=1,
        maximum=MAX_TOKENS,
        minimum_message="must be greater than 0",
    )
    gt = reader.integer(m, "inputTokensGt", path, minimum=0, maximum=MAX_TOKENS)
    if lt is not None and gt is not None and gt >= lt:
        reader.problems.error(path, "inputTokensGt must be less than inputTokensLt")
    match.task_types.extend([task_type] if task_type else [])
    match.user_priorities.extend([priority] if priority else [])
    match.models.extend([model] if model else [])
    if lt is not None:
        match.input_tokens_lt = lt
    if gt is not None:
        match.input_tokens_gt = gt
    headers = reader.array(m, "headers", path, min_items=1, max_items=MAX_HEADERS)
    for i, item in enumerate(headers):
        header = _header(reader, item, f"{path}.headers[{i}]")
        if header is not None:
            match.headers.append(header)
    return match


def _header(reader: Reader, value: object, path: str) -> snapshot_pb2.HeaderMatch | None:
    h = reader.obj(value, path, HEADER_FIELDS, required=("name",))
    if h is None:
        return None
    if sum(k in h for k in ("exact", "regex", "present")) != 1:
        reader.problems.error(path, "set exactly one of exact, regex or present")
    name = reader.string(
        h,
        "name",
        path,
        max_length=MAX_HEADER_NAME,
        pattern=HEADER_NAME,
        pattern_message="must be an HTTP header name (letters, digits, '-', '_', '.')",
    )
    header = snapshot_pb2.HeaderMatch(name=(name or "").lower())
    exact = reader.string(h, "exact", path, max_length=MAX_HEADER_VALUE)
    regex = reader.string(h, "regex", path, max_length=MAX_HEADER_VALUE)
    present = reader.boolean(h, "present", path)
    if exact is not None:
        header.exact = exact
    elif regex is not None:
        try:
            re.compile(regex)
        except re.error as exc:
            reader.problems.error(child(path, "regex"), f"invalid regular expression: {exc}")
        header.regex = regex
    elif present is False:
        reader.problems.error(
            child(path, "present"), "must be true (a header that must be absent is not supported)"
        )
    elif present:
        header.present = True
    return header
