"""One LLMRoute's spec to one `RouteSet`: backends, routes and policies.

Every check of the CRD schema and its CEL rules is repeated here, because the
standalone file source has no API server to run them, and so are the checks
no schema can make: Secrets and their keys, unknown fields, duration syntax,
header regexes, unique route names. Defaults are written out in the
RouteSet, so the sidecar never has to guess:

- endpoint weight 1;
- retry: 1 attempt (no retry), backoff from 100ms up to 2s;
- timeouts: request 120s, attempt as long as the request, connect 10s;
- load balancing: least-outstanding; eject an endpoint for 30s after 5
  consecutive failures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sidelight_operator.compile.reader import Reader, child
from sidelight_operator.compile.routes import MAX_MODEL, MAX_NAME, NAME, NAME_MESSAGE, build_routes
from sidelight_operator.compile.secrets import SecretError, SecretIndex
from sidelight_operator.compile.selection import read_selector
from sidelight_proto.v1 import snapshot_pb2

PROVIDERS = {
    "openai": snapshot_pb2.PROVIDER_OPENAI,
    "azure-openai": snapshot_pb2.PROVIDER_AZURE_OPENAI,
    "anthropic": snapshot_pb2.PROVIDER_ANTHROPIC,
    "openai-compatible": snapshot_pb2.PROVIDER_OPENAI_COMPATIBLE,
}
KEYLESS_PROVIDERS = ("openai-compatible",)  # a self-hosted server may need no key
STRATEGIES = {
    "weighted-round-robin": snapshot_pb2.LOAD_BALANCING_STRATEGY_WEIGHTED_ROUND_ROBIN,
    "least-outstanding": snapshot_pb2.LOAD_BALANCING_STRATEGY_LEAST_OUTSTANDING,
    "latency-ewma": snapshot_pb2.LOAD_BALANCING_STRATEGY_LATENCY_EWMA,
}

DEFAULT_WEIGHT = 1
DEFAULT_ATTEMPTS = 1
DEFAULT_BACKOFF_BASE_MS = 100
DEFAULT_BACKOFF_MAX_MS = 2_000
DEFAULT_REQUEST_TIMEOUT_MS = 120_000
DEFAULT_CONNECT_TIMEOUT_MS = 10_000
DEFAULT_STRATEGY = "least-outstanding"
DEFAULT_EJECTION_FAILURES = 5
DEFAULT_EJECTION_COOLDOWN_MS = 30_000

MAX_BACKENDS = 32
MAX_ENDPOINTS = 16
MAX_URL = 2048
MAX_WEIGHT = 10_000
MAX_API_VERSION = 32
MAX_ATTEMPTS = 10
MAX_EJECTION_FAILURES = 1000
MAX_SECRET_NAME = 253
MAX_SECRET_KEY = 253

URL = re.compile(r"https?://[^/?#\s]+([/?#]\S*)?")
API_VERSION = re.compile(r"[A-Za-z0-9][-A-Za-z0-9.]*")
SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")

SPEC_FIELDS = ("podSelector", "backends", "routes", "loadBalancing", "retry", "timeouts")
BACKEND_FIELDS = ("name", "provider", "model", "endpoints", "credentials", "pricing", "apiVersion")


def build_route_set(
    source: snapshot_pb2.ResourceRef, spec: object, secrets: SecretIndex, reader: Reader
) -> snapshot_pb2.RouteSet:
    """The RouteSet of one LLMRoute; problems go to `reader`, values to the result."""
    route_set = snapshot_pb2.RouteSet(source=source)
    s = reader.obj(spec, "spec", SPEC_FIELDS, required=("backends", "routes"))
    if s is None:
        return route_set
    if "podSelector" in s:
        read_selector(reader, s["podSelector"], "spec.podSelector")
    items = reader.array(s, "backends", "spec", min_items=1, max_items=MAX_BACKENDS)
    first: dict[str, str] = {}
    for i, item in enumerate(items):
        path = f"spec.backends[{i}]"
        backend = _backend(reader, item, path, source.namespace, secrets)
        name = item.get("name") if isinstance(item, Mapping) else None
        if isinstance(name, str) and name in first:
            reader.problems.error(
                child(path, "name"), f"duplicate backend name {name!r} (also {first[name]})"
            )
        elif isinstance(name, str):
            first[name] = path
        route_set.backends.append(backend)
    route_set.routes.extend(build_routes(reader, s, first))
    route_set.load_balancing.CopyFrom(_load_balancing(reader, s))
    route_set.retry.CopyFrom(_retry(reader, s))
    route_set.timeouts.CopyFrom(_timeouts(reader, s))
    return route_set


def _backend(
    reader: Reader, value: object, path: str, namespace: str, secrets: SecretIndex
) -> snapshot_pb2.Backend:
    backend = snapshot_pb2.Backend()
    b = reader.obj(value, path, BACKEND_FIELDS, required=("name", "provider", "model", "endpoints"))
    if b is None:
        return backend
    backend.name = (
        reader.string(
            b, "name", path, max_length=MAX_NAME, pattern=NAME, pattern_message=NAME_MESSAGE
        )
        or ""
    )
    provider = reader.string(b, "provider", path, max_length=32, enum=PROVIDERS)
    backend.provider = PROVIDERS.get(provider or "", snapshot_pb2.PROVIDER_UNSPECIFIED)
    backend.model = reader.string(b, "model", path, max_length=MAX_MODEL) or ""
    endpoints = reader.array(b, "endpoints", path, min_items=1, max_items=MAX_ENDPOINTS)
    for i, item in enumerate(endpoints):
        backend.endpoints.append(_endpoint(reader, item, f"{path}.endpoints[{i}]"))
    backend.api_version = (
        reader.string(
            b,
            "apiVersion",
            path,
            max_length=MAX_API_VERSION,
            pattern=API_VERSION,
            pattern_message="must be letters, digits, '-' and '.', such as 2024-06-01",
        )
        or ""
    )
    if provider == "azure-openai" and "apiVersion" not in b:
        reader.problems.error(child(path, "apiVersion"), "is required for provider azure-openai")
    elif provider is not None and provider != "azure-openai" and "apiVersion" in b:
        reader.problems.error(child(path, "apiVersion"), "applies only to provider azure-openai")
    if "credentials" in b:
        backend.credential.CopyFrom(
            _credential(reader, b["credentials"], child(path, "credentials"), namespace, secrets)
        )
    elif provider is not None and provider not in KEYLESS_PROVIDERS:
        reader.problems.error(child(path, "credentials"), f"is required for provider {provider}")
    if "pricing" in b:
        backend.pricing.CopyFrom(_pricing(reader, b["pricing"], child(path, "pricing")))
    return backend


def _endpoint(reader: Reader, value: object, path: str) -> snapshot_pb2.Endpoint:
    e = reader.obj(value, path, ("url", "weight"), required=("url",)) or {}
    url = reader.string(
        e,
        "url",
        path,
        max_length=MAX_URL,
        pattern=URL,
        pattern_message="must be an http:// or https:// URL with a host",
    )
    weight = reader.integer(e, "weight", path, minimum=1, maximum=MAX_WEIGHT)
    return snapshot_pb2.Endpoint(url=url or "", weight=weight or DEFAULT_WEIGHT)


def _credential(
    reader: Reader, value: object, path: str, namespace: str, secrets: SecretIndex
) -> snapshot_pb2.Credential:
    credential = snapshot_pb2.Credential()
    c = reader.obj(value, path, ("secretRef",), required=("secretRef",)) or {}
    where = child(path, "secretRef")
    fields = ("name", "key")
    ref = reader.obj(c["secretRef"], where, fields, fields) if "secretRef" in c else None
    if not ref:
        return credential
    name = reader.string(
        ref,
        "name",
        where,
        max_length=MAX_SECRET_NAME,
        pattern=SECRET_NAME,
        pattern_message="must be a Secret name (lower-case DNS subdomain)",
    )
    key = reader.string(
        ref,
        "key",
        where,
        max_length=MAX_SECRET_KEY,
        pattern=SECRET_KEY,
        pattern_message="must be a Secret key (letters, digits, '-', '_', '.')",
    )
    if name is None or key is None:
        return credential
    credential.secret_ref.name, credential.secret_ref.key = name, key
    try:
        credential.value = secrets.value(namespace, name, key)
    except SecretError as exc:
        reader.problems.error(where, str(exc))
    return credential


def _pricing(reader: Reader, value: object, path: str) -> snapshot_pb2.Pricing:
    fields = ("inputPerMillionTokens", "outputPerMillionTokens")
    p = reader.obj(value, path, fields, required=fields) or {}
    return snapshot_pb2.Pricing(
        input_per_million_tokens=reader.number(p, fields[0], path) or 0.0,
        output_per_million_tokens=reader.number(p, fields[1], path) or 0.0,
    )


def _section(reader: Reader, spec: Mapping[str, Any], key: str, fields: tuple[str, ...]) -> Any:
    return reader.obj(spec.get(key, {}), child("spec", key), fields) or {}


def _load_balancing(reader: Reader, spec: Mapping[str, Any]) -> snapshot_pb2.LoadBalancing:
    path = "spec.loadBalancing"
    lb = _section(reader, spec, "loadBalancing", ("strategy", "ejection"))
    strategy = reader.string(lb, "strategy", path, max_length=32, enum=STRATEGIES)
    ejection = (
        reader.obj(
            lb.get("ejection", {}), child(path, "ejection"), ("consecutiveFailures", "cooldown")
        )
        or {}
    )
    where = child(path, "ejection")
    failures = reader.integer(
        ejection, "consecutiveFailures", where, minimum=1, maximum=MAX_EJECTION_FAILURES
    )
    return snapshot_pb2.LoadBalancing(
        strategy=STRATEGIES[strategy or DEFAULT_STRATEGY],
        ejection_consecutive_failures=failures or DEFAULT_EJECTION_FAILURES,
        ejection_cooldown_ms=reader.duration_ms(ejection, "cooldown", where)
        or DEFAULT_EJECTION_COOLDOWN_MS,
    )


def _retry(reader: Reader, spec: Mapping[str, Any]) -> snapshot_pb2.RetryPolicy:
    path = "spec.retry"
    retry = _section(reader, spec, "retry", ("attempts", "backoff"))
    attempts = reader.integer(retry, "attempts", path, minimum=1, maximum=MAX_ATTEMPTS)
    where = child(path, "backoff")
    backoff = reader.obj(retry.get("backoff", {}), where, ("base", "max")) or {}
    base = reader.duration_ms(backoff, "base", where) or DEFAULT_BACKOFF_BASE_MS
    top = reader.duration_ms(backoff, "max", where) or DEFAULT_BACKOFF_MAX_MS
    if base > top:
        reader.problems.error(
            where, f"base ({base}ms) must not exceed max ({top}ms; defaults: base 100ms, max 2s)"
        )
    return snapshot_pb2.RetryPolicy(
        attempts=attempts or DEFAULT_ATTEMPTS, backoff_base_ms=base, backoff_max_ms=top
    )


def _timeouts(reader: Reader, spec: Mapping[str, Any]) -> snapshot_pb2.Timeouts:
    path = "spec.timeouts"
    t = _section(reader, spec, "timeouts", ("request", "attempt", "connect"))
    request = reader.duration_ms(t, "request", path) or DEFAULT_REQUEST_TIMEOUT_MS
    attempt = reader.duration_ms(t, "attempt", path) or request
    if attempt > request:
        reader.problems.error(
            child(path, "attempt"),
            f"must not exceed the request timeout ({request}ms; default 120s)",
        )
    return snapshot_pb2.Timeouts(
        request_ms=request,
        attempt_ms=attempt,
        connect_ms=reader.duration_ms(t, "connect", path) or DEFAULT_CONNECT_TIMEOUT_MS,
    )
