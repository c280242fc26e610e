"""The dimensions a usage record is aggregated by, taken from the record once.

Identity fields come from the pod (downward API), never from request headers.
`application` falls back to the workload name when the pod has no application
label. `route` joins the LLMRoute (namespace/name) and the rule: `ns/name#rule`.
`guardrail` summarises a record's guardrail verdicts into one value, the most
severe: blocked > redacted > flagged > pass; `none` when no guardrail ran.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidelight_proto.v1 import usage_pb2

# The dimensions in the order of the rollup key. Names are also column names.
DIMENSIONS: tuple[str, ...] = (
    "namespace",
    "team",
    "application",
    "environment",
    "requested_model",
    "served_model",
    "backend",
    "route",
    "fallback",
    "guardrail",
)

VERDICTS: tuple[str, ...] = ("blocked", "redacted", "flagged", "pass")
NO_GUARDRAIL = "none"
NUSD_PER_USD = 1_000_000_000


def guardrail_summary(record: usage_pb2.UsageRecord) -> str:
    """The most severe verdict among the record's guardrails, or `none`."""
    seen = {verdict.verdict for verdict in record.guardrails}
    for verdict in VERDICTS:
        if verdict in seen:
            return verdict
    return "pass" if seen else NO_GUARDRAIL


def route_key(record: usage_pb2.UsageRecord) -> str:
    """`namespace/name#rule` of the route that served the record ("" if none)."""
    if not record.route_set and not record.route:
        return ""
    return f"{record.route_set}#{record.route}"


def is_error(record: usage_pb2.UsageRecord) -> bool:
    """A request that did not succeed: an HTTP error status or a named error."""
    return record.status >= 400 or bool(record.error_type)


@dataclass(frozen=True, slots=True)
class Row:
    """One record flattened for storage: its dimensions and its measures."""

    id: str
    ts: float
    dims: tuple[str | int, ...]
    pod: str
    endpoint: str
    stream: int
    attempts: int
    input_tokens: int
    output_tokens: int
    cost_nusd: int
    latency_ms: float
    status: int
    error_type: str
    error: int
    trace_id: str

    def columns(self) -> tuple[object, ...]:
        """The values of a `records` row, in column order."""
        return (
            self.id,
            self.ts,
            *self.dims,
            self.pod,
            self.endpoint,
            self.stream,
            self.attempts,
            self.input_tokens,
            self.output_tokens,
            self.cost_nusd,
            self.latency_ms,
            self.status,
            self.error_type,
            self.error,
            self.trace_id,
        )

    def measures(self) -> tuple[float, ...]:
        """What an hourly rollup sums: requests, errors, tokens in and out, cost, latency."""
        return (
            1,
            self.error,
            self.input_tokens,
            self.output_tokens,
            self.cost_nusd,
            self.latency_ms,
        )


def to_row(record: usage_pb2.UsageRecord, default_ts: float) -> Row:
    """Flatten a record; `default_ts` stands in for a record without a time."""
    identity = record.identity
    ts = record.time.seconds + record.time.nanos / 1e9 if record.HasField("time") else default_ts
    dims: tuple[str | int, ...] = (
        identity.namespace,
        identity.team,
        identity.application or identity.workload,
        identity.environment,
        record.requested_model,
        record.served_model,
        record.backend,
        route_key(record),
        int(record.fallback),
        guardrail_summary(record),
    )
    return Row(
        id=record.id,
        ts=ts,
        dims=dims,
        pod=identity.pod,
        endpoint=record.endpoint,
        stream=int(record.stream),
        attempts=record.attempts,
        input_tokens=record.input_tokens,
        output_tokens=record.output_tokens,
        cost_nusd=round(record.cost_usd * NUSD_PER_USD),
        latency_ms=record.latency_ms,
        status=record.status,
        error_type=record.error_type,
        error=int(is_error(record)),
        trace_id=record.trace_id,
    )
