"""Prometheus metrics of usage, updated from each newly ingested record.

Every metric carries the labels namespace, team, application, environment,
model (the served model) and backend. Label cardinality is bounded: each
label keeps at most `label_cap` distinct values (in the order they were first
seen); later values are reported as `other`, and
`sidelight_usage_label_overflow_total{label}` counts the records that lost a
value so. The metrics live in the `CollectorRegistry` the caller passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram

from sidelight_operator.usage.dimensions import NO_GUARDRAIL, guardrail_summary, is_error
from sidelight_proto.v1 import usage_pb2

LABELS: tuple[str, ...] = ("namespace", "team", "application", "environment", "model", "backend")
OTHER = "other"
DEFAULT_LABEL_CAP = 100
# LLM calls take from tens of milliseconds to minutes.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class _Children(NamedTuple):
    """The metrics' children for one tuple of label values."""

    values: tuple[str, ...]
    input_tokens: Counter
    output_tokens: Counter
    cost: Counter
    requests: Counter
    errors: Counter
    fallbacks: Counter
    latency: Histogram


class LabelLimiter:
    """Keeps at most `cap` distinct values per label; the rest become `other`."""

    def __init__(self, cap: int) -> None:
        if cap < 1:
            raise ValueError("label cap must be at least 1")
        self.cap = cap
        self._seen: dict[str, set[str]] = {label: set() for label in LABELS}

    def limit(self, label: str, value: str) -> tuple[str, bool]:
        """The value to report for `label`, and whether it was replaced by `other`."""
        seen = self._seen[label]
        if value in seen:
            return value, False
        if len(seen) < self.cap:
            seen.add(value)
            return value, False
        return OTHER, True


class UsageMetrics:
    """The usage counters and latency histogram; `observe(records)` after ingest."""

    def __init__(self, registry: CollectorRegistry, label_cap: int = DEFAULT_LABEL_CAP) -> None:
        self.limiter = LabelLimiter(label_cap)
        self.tokens = Counter(
            "sidelight_usage_tokens",
            "Tokens used, by direction (input or output).",
            (*LABELS, "direction"),
            registry=registry,
        )
        self.cost = Counter(
            "sidelight_usage_cost_usd", "Cost in US dollars.", LABELS, registry=registry
        )
        self.requests = Counter(
            "sidelight_usage_requests", "Requests served or refused.", LABELS, registry=registry
        )
        self.errors = Counter(
            "sidelight_usage_errors",
            "Requests answered with an error (HTTP status 400 or more, or a named error).",
            LABELS,
            registry=registry,
        )
        self.fallbacks = Counter(
            "sidelight_usage_fallbacks",
            "Requests served by another backend than the route's first.",
            LABELS,
            registry=registry,
        )
        self.verdicts = Counter(
            "sidelight_usage_guardrail_verdicts",
            "Requests by their most severe guardrail verdict (blocked, redacted, flagged, pass).",
            (*LABELS, "verdict"),
            registry=registry,
        )
        self.latency = Histogram(
            "sidelight_usage_request_duration_seconds",
            "Request latency as the sidecar measured it, in seconds.",
            LABELS,
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.overflow = Counter(
            "sidelight_usage_label_overflow",
            "Records whose label value was reported as 'other' (label cap reached).",
            ("label",),
            registry=registry,
        )
        # Children bound per label values seen, so that a record costs dictionary
        # lookups rather than labels() calls (bench/usage_store_bench.py). Keyed
        # by the raw values only when none went over the cap: the cache stays as
        # bounded as the metrics.
        self._by_raw: dict[tuple[str, ...], _Children] = {}
        self._children: dict[tuple[str, ...], _Children] = {}
        self._verdicts: dict[tuple[str, ...], Counter] = {}

    def observe(self, records: Sequence[usage_pb2.UsageRecord]) -> None:
        """Count the records; call once per newly stored record (UsageStore listener)."""
        for record in records:
            identity = record.identity
            raw = (
                identity.namespace,
                identity.team,
                identity.application or identity.workload,
                identity.environment,
                record.served_model,
                record.backend,
            )
            children = self._by_raw.get(raw) or self._lookup(raw)
            children.input_tokens.inc(record.input_tokens)
            children.output_tokens.inc(record.output_tokens)
            children.cost.inc(record.cost_usd)
            children.requests.inc()
            if is_error(record):
                children.errors.inc()
            if record.fallback:
                children.fallbacks.inc()
            children.latency.observe(record.latency_ms / 1000)
            verdict = guardrail_summary(record)
            if verdict != NO_GUARDRAIL:
                key = (*children.values, verdict)
                counter = self._verdicts.get(key)
                if counter is None:
                    counter = self._verdicts[key] = self.verdicts.labels(*key)
                counter.inc()

    def _lookup(self, raw: tuple[str, ...]) -> _Children:
        values: list[str] = []
        capped = False
        for label, value in zip(LABELS, raw, strict=True):
            limited, replaced = self.limiter.limit(label, value)
            if replaced:
                self.overflow.labels(label).inc()
                capped = True
            values.append(limited)
        key = tuple(values)
        children = self._children.get(key) or self._bind(key)
        if not capped:
            self._by_raw[raw] = children
        return children

    def _bind(self, values: tuple[str, ...]) -> _Children:
        children = _Children(
            values,
            self.tokens.labels(*values, "input"),
            self.tokens.labels(*values, "output"),
            self.cost.labels(*values),
            self.requests.labels(*values),
            self.errors.labels(*values),
            self.fallbacks.labels(*values),
            self.latency.labels(*values),
        )
        self._children[values] = children
        return children
