"""Usage records for the usage tests, with known values."""

from __future__ import annotations

from datetime import UTC, datetime

from sidelight_proto.v1 import usage_pb2

T0 = datetime(2025, 3, 3, tzinfo=UTC).timestamp()  # a Monday, 00:00 UTC


def record(
    id: str,
    ts: float = T0,
    *,
    namespace: str = "shop",
    team: str = "payments",
    application: str = "checkout",
    environment: str = "prod",
    requested_model: str = "gpt-4o",
    served_model: str = "gpt-4o",
    backend: str = "openai",
    route_set: str = "shop/assistant",
    route: str = "default",
    fallback: bool = False,
    input_tokens: int = 100,
    output_tokens: int = 50,
    cost_usd: float = 0.01,
    latency_ms: float = 120.0,
    status: int = 200,
    error_type: str = "",
    verdicts: tuple[str, ...] = (),
    trace_id: str = "",
) -> usage_pb2.UsageRecord:
    """One record; every field the store reads can be set."""
    out = usage_pb2.UsageRecord(
        id=id,
        identity=usage_pb2.Identity(
            namespace=namespace,
            pod=f"{application}-0",
            workload=application,
            team=team,
            application=application,
            environment=environment,
        ),
        api_format="openai",
        endpoint="chat.completions",
        requested_model=requested_model,
        served_model=served_model,
        backend=backend,
        route_set=route_set,
        route=route,
        attempts=2 if fallback else 1,
        fallback=fallback,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost_usd,
        latency_ms=latency_ms,
        status=status,
        error_type=error_type,
        trace_id=trace_id or id.encode().hex().ljust(32, "0")[:32],
        guardrails=[
            usage_pb2.GuardrailVerdict(guardrail="shop/pii", rule="r", verdict=v) for v in verdicts
        ],
    )
    out.time.FromNanoseconds(round(ts * 1e9))
    return out
