"""The runtime shape of a snapshot: built once per version, read per request.

`build_runtime` turns the wire `Snapshot` into plain frozen objects with the
regexes compiled, the backends resolved and the balancers made, so the
per-request path only reads (STYLE principle 2). A snapshot that cannot be
built raises `SnapshotError`, and the caller keeps the previous version.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.balancer import Balancer, Ejection, EndpointRegistry, Strategy
from sidelight_sidecar.errors import ApiFormat
from sidelight_sidecar.guardrails import GuardrailConfigError, GuardrailRuntime, build_guardrails
from sidelight_sidecar.pricing import Price, builtin_price
from sidelight_sidecar.quota.rules import QuotaRule, build_quota_rules
from sidelight_sidecar.retry import Backoff

DEFAULT_REQUEST_TIMEOUT_S = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 10.0


class SnapshotError(ValueError):
    """A snapshot that this sidecar cannot serve; the reason goes into the NACK."""


class Provider(Enum):
    """How to speak to a backend."""

    OPENAI = "openai"
    AZURE_OPENAI = "azure-openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"

    @property
    def api_format(self) -> ApiFormat:
        """The wire format: "anthropic" or "openai"."""
        return "anthropic" if self is Provider.ANTHROPIC else "openai"


_PROVIDERS = {
    snapshot_pb2.PROVIDER_OPENAI: Provider.OPENAI,
    snapshot_pb2.PROVIDER_AZURE_OPENAI: Provider.AZURE_OPENAI,
    snapshot_pb2.PROVIDER_ANTHROPIC: Provider.ANTHROPIC,
    snapshot_pb2.PROVIDER_OPENAI_COMPATIBLE: Provider.OPENAI_COMPATIBLE,
}

_STRATEGIES = {
    snapshot_pb2.LOAD_BALANCING_STRATEGY_UNSPECIFIED: Strategy.LEAST_OUTSTANDING,
    snapshot_pb2.LOAD_BALANCING_STRATEGY_LEAST_OUTSTANDING: Strategy.LEAST_OUTSTANDING,
    snapshot_pb2.LOAD_BALANCING_STRATEGY_WEIGHTED_ROUND_ROBIN: Strategy.WEIGHTED_ROUND_ROBIN,
    snapshot_pb2.LOAD_BALANCING_STRATEGY_LATENCY_EWMA: Strategy.LATENCY_EWMA,
}


@dataclass(frozen=True, eq=False)
class Backend:
    """A model behind one or more endpoints."""

    name: str
    route_set: str
    provider: Provider
    model: str
    balancer: Balancer
    api_version: str
    price: Price | None
    key: str = field(repr=False)


@dataclass(frozen=True)
class RequestFacts:
    """What routing looks at. `input_tokens` is computed only if a rule asks."""

    model: str
    task_type: str | None
    priority: str | None
    headers: Mapping[str, str]
    input_tokens: Callable[[], int]


@dataclass(frozen=True, eq=False)
class HeaderCondition:
    """One header condition of a match."""

    name: str
    exact: str | None = None
    regex: re.Pattern[str] | None = None

    def holds(self, headers: Mapping[str, str]) -> bool:
        """True when the request's headers satisfy this condition."""
        value = headers.get(self.name)
        if value is None:
            return False
        if self.exact is not None:
            return value == self.exact
        if self.regex is not None:
            return self.regex.fullmatch(value) is not None
        return True


@dataclass(frozen=True, eq=False)
class Route:
    """One rule: conditions, and the backends to try in order."""

    name: str
    route_set: str
    candidates: tuple[Backend, ...]
    task_types: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    models: frozenset[str] = frozenset()
    headers: tuple[HeaderCondition, ...] = ()
    tokens_lt: int | None = None
    tokens_gt: int | None = None

    @property
    def is_default(self) -> bool:
        """True for a rule without conditions."""
        return not (
            self.task_types or self.priorities or self.models or self.headers or self.counts_tokens
        )

    @property
    def counts_tokens(self) -> bool:
        """True when this rule needs the input token count."""
        return self.tokens_lt is not None or self.tokens_gt is not None

    def matches(self, facts: RequestFacts) -> bool:
        """True when every condition set on this rule holds for `facts`."""
        if self.task_types and facts.task_type not in self.task_types:
            return False
        if self.priorities and facts.priority not in self.priorities:
            return False
        if self.models and facts.model not in self.models:
            return False
        if not all(h.holds(facts.headers) for h in self.headers):
            return False
        if self.counts_tokens:
            n = facts.input_tokens()
            if self.tokens_lt is not None and not n < self.tokens_lt:
                return False
            if self.tokens_gt is not None and not n > self.tokens_gt:
                return False
        return True


@dataclass(frozen=True)
class Policy:
    """Retries and timeouts of one LLMRoute."""

    attempts: int = 1
    backoff: Backoff = field(default_factory=Backoff)
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    attempt_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S


@dataclass(frozen=True)
class Decision:
    """The routing outcome for one request."""

    route: Route
    policy: Policy
    direct: bool = False  # no rule matched; the model named a backend


@dataclass(frozen=True, eq=False)
class RuntimeConfig:
    """Everything a request needs from one snapshot version."""

    version: str
    routes: tuple[Route, ...]
    policies: Mapping[str, Policy]
    direct: Mapping[str, Route]
    models: tuple[str, ...]
    guardrails: GuardrailRuntime = field(default_factory=lambda: GuardrailRuntime((), ()))
    quotas: tuple[QuotaRule, ...] = ()

    def route(self, facts: RequestFacts) -> Decision | None:
        """Pick the route for a request.

        The first rule with conditions that all hold wins; else a requested model
        that names a backend goes to it; else the first default (a rule without
        conditions). A default is what serves when nothing more specific does, so
        `model: claude-3-haiku` reaches that backend even when a default exists.
        """
        default: Route | None = None
        for route in self.routes:
            if route.is_default:
                default = default or route
            elif route.matches(facts):
                return Decision(route, self.policies[route.route_set])
        direct = self.direct.get(facts.model)
        if direct is not None:
            return Decision(direct, self.policies[direct.route_set], direct=True)
        if default is not None:
            return Decision(default, self.policies[default.route_set])
        return None

    @property
    def backend_models(self) -> tuple[str, ...]:
        """Provider model names of all backends (for tokenizer warm-up)."""
        seen = {b.model: None for r in self.routes for b in r.candidates}
        seen.update({b.model: None for r in self.direct.values() for b in r.candidates})
        return tuple(seen)


def _ms(value: int, default_s: float) -> float:
    return value / 1000 if value else default_s


def _policy(rs: snapshot_pb2.RouteSet) -> Policy:
    request_s = _ms(rs.timeouts.request_ms, DEFAULT_REQUEST_TIMEOUT_S)
    backoff = Backoff(
        base_s=_ms(rs.retry.backoff_base_ms, Backoff.base_s),
        max_s=_ms(rs.retry.backoff_max_ms, Backoff.max_s),
    )
    return Policy(
        attempts=max(1, rs.retry.attempts),
        backoff=backoff,
        request_timeout_s=request_s,
        attempt_timeout_s=_ms(rs.timeouts.attempt_ms, request_s),
        connect_timeout_s=_ms(rs.timeouts.connect_ms, DEFAULT_CONNECT_TIMEOUT_S),
    )


def _backend(
    b: snapshot_pb2.Backend, set_name: str, lb: snapshot_pb2.LoadBalancing, reg: EndpointRegistry
) -> Backend:
    provider = _PROVIDERS.get(b.provider)
    if provider is None:
        raise SnapshotError(f"{set_name}: backend {b.name!r} has no provider")
    if not b.endpoints:
        raise SnapshotError(f"{set_name}: backend {b.name!r} has no endpoints")
    for ep in b.endpoints:
        if not ep.url.startswith(("http://", "https://")):
            raise SnapshotError(f"{set_name}: backend {b.name!r} endpoint is not an http(s) URL")
    ejection = Ejection(
        consecutive_failures=lb.ejection_consecutive_failures or Ejection.consecutive_failures,
        cooldown_s=_ms(lb.ejection_cooldown_ms, Ejection.cooldown_s),
    )
    balancer = Balancer.build(
        [(ep.url.rstrip("/"), ep.weight) for ep in b.endpoints],
        _STRATEGIES.get(lb.strategy, Strategy.LEAST_OUTSTANDING),
        ejection,
        reg,
    )
    price = (
        Price(b.pricing.input_per_million_tokens, b.pricing.output_per_million_tokens)
        if b.HasField("pricing")
        else builtin_price(b.model)
    )
    return Backend(
        name=b.name,
        route_set=set_name,
        provider=provider,
        model=b.model,
        balancer=balancer,
        api_version=b.api_version,
        price=price,
        key=b.credential.value.decode("utf-8", "replace"),
    )


def _route(r: snapshot_pb2.Route, set_name: str, backends: Mapping[str, Backend]) -> Route:
    names = [r.route_to, *r.fallbacks]
    missing = [n for n in names if n not in backends]
    if missing:
        raise SnapshotError(f"{set_name}: route {r.name!r} names unknown backends {missing}")
    candidates = tuple(dict.fromkeys(backends[n] for n in names))
    if not r.HasField("match"):
        return Route(r.name, set_name, candidates)  # a default
    m = r.match
    headers = []
    for h in m.headers:
        kind = h.WhichOneof("value")
        try:
            regex = re.compile(h.regex) if kind == "regex" else None
        except re.error as exc:
            raise SnapshotError(f"{set_name}: route {r.name!r} header regex: {exc}") from exc
        headers.append(HeaderCondition(h.name.lower(), h.exact if kind == "exact" else None, regex))
    return Route(
        r.name,
        set_name,
        candidates,
        task_types=frozenset(m.task_types),
        priorities=frozenset(m.user_priorities),
        models=frozenset(m.models),
        headers=tuple(headers),
        tokens_lt=m.input_tokens_lt if m.HasField("input_tokens_lt") else None,
        tokens_gt=m.input_tokens_gt if m.HasField("input_tokens_gt") else None,
    )


def build_runtime(snapshot: snapshot_pb2.Snapshot, registry: EndpointRegistry) -> RuntimeConfig:
    """Build the runtime shape of `snapshot`, or raise SnapshotError."""
    routes: list[Route] = []
    policies: dict[str, Policy] = {}
    direct: dict[str, Route] = {}
    for rs in snapshot.route_sets:
        set_name = f"{rs.source.namespace}/{rs.source.name}"
        policies[set_name] = _policy(rs)
        backends: dict[str, Backend] = {}
        for b in rs.backends:
            if b.name in backends:
                raise SnapshotError(f"{set_name}: duplicate backend {b.name!r}")
            backends[b.name] = _backend(b, set_name, rs.load_balancing, registry)
        routes.extend(_route(r, set_name, backends) for r in rs.routes)
        for name, backend in backends.items():
            direct.setdefault(name, Route(f"model:{name}", set_name, (backend,)))
    models = tuple(direct)
    try:
        guardrails = build_guardrails(snapshot.guardrails)
    except GuardrailConfigError as exc:
        raise SnapshotError(str(exc)) from exc
    return RuntimeConfig(
        snapshot.version,
        tuple(routes),
        policies,
        direct,
        models,
        guardrails,
        build_quota_rules(snapshot.quotas),
    )
