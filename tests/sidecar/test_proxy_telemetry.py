"""Spans as OTLP bytes, usage records, and what never appears in either."""

from __future__ import annotations

from collections import Counter
from typing import Any

from opentelemetry.proto.trace.v1 import trace_pb2

from sidelight_fake_provider.faults import FaultRule
from tests.sidecar.harness import ANTHROPIC_KEY, OPENAI_KEY, SEED_ROUTES, Harness

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
SECRET_PROMPT = "my card is 4111 1111 1111 1111 and my name is Zanzibar Quux"


def attrs(span: trace_pb2.Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [v.string_value for v in value.array_value.values]
        else:
            out[kv.key] = getattr(value, kind) if kind else None
    return out


async def test_trace_continues_the_callers_and_shows_every_step(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    harness.anthropic_fake.add_fault(FaultRule(status=529, times=2))
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4",
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        max_tokens=20,
        extra_headers={
            "traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-01",
            "x-sidelight-task-type": "summarization",
        },
    )
    assert raw.headers["x-sidelight-trace-id"] == PARENT_TRACE
    spans = await harness.spans(5)
    assert {s.trace_id.hex() for s in spans} == {PARENT_TRACE}
    by_name = Counter(s.name for s in spans)
    assert by_name["POST /v1/chat/completions"] == 1
    assert by_name["sidelight.route"] == 1
    assert by_name["chat claude-3-haiku-20240307"] == 2
    assert by_name["chat gpt-4"] == 1
    server = next(s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER)
    assert server.parent_span_id.hex() == PARENT_SPAN
    children = [s for s in spans if s is not server]
    assert all(s.parent_span_id == server.span_id for s in children)
    route = attrs(next(s for s in spans if s.name == "sidelight.route"))
    assert route["sidelight.route"] == "cheap-summaries"
    assert route["sidelight.route_set"] == "shop/assistant"
    assert route["sidelight.route.candidates"] == ["claude-3-haiku", "gpt-4"]
    assert route["sidelight.input_tokens.counted"] > 0
    served = attrs(next(s for s in spans if s.name == "chat gpt-4"))
    assert served["gen_ai.operation.name"] == "chat"
    assert served["gen_ai.provider.name"] == "openai"
    assert served["gen_ai.request.model"] == "gpt-4"
    assert served["gen_ai.response.model"] == "gpt-4"
    assert served["gen_ai.request.max_tokens"] == 20
    assert served["gen_ai.usage.input_tokens"] > 0
    assert served["gen_ai.usage.output_tokens"] > 0
    assert served["sidelight.fallback_index"] == 1
    failed = [s for s in spans if s.name.startswith("chat claude")]
    assert all(s.status.code == trace_pb2.Status.STATUS_CODE_ERROR for s in failed)
    events = [e.name for e in server.events]
    assert events == ["sidelight.retry", "sidelight.fallback"]
    top = attrs(server)
    assert top["sidelight.fallback"] is True
    assert top["sidelight.attempts"] == 3
    assert top["sidelight.cost_usd"] > 0
    resource = {
        kv.key: kv.value.string_value
        for kv in harness.otlp.requests[0].resource_spans[0].resource.attributes
    }
    assert resource["k8s.namespace.name"] == "shop"
    wire = b"".join(harness.otlp.raw)
    for secret in (b"Zanzibar", b"4111", OPENAI_KEY.encode(), ANTHROPIC_KEY.encode()):
        assert secret not in wire


async def test_usage_record_per_request(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    raw = await harness.oai.chat.completions.with_raw_response.create(
        model="gpt-4", messages=[{"role": "user", "content": SECRET_PROMPT}]
    )
    completion = raw.parse()
    (record,) = await harness.usage(1)
    assert record["identity"] == {
        "namespace": "shop",
        "pod": "chat-7d9f-abcde",
        "workload": "chat",
        "team": "payments",
        "application": "chat",
        "environment": "prod",
    }
    assert completion.usage is not None
    assert record["input_tokens"] == str(completion.usage.prompt_tokens)
    assert record["output_tokens"] == str(completion.usage.completion_tokens)
    expected_cost = (
        completion.usage.prompt_tokens * 30 + completion.usage.completion_tokens * 60
    ) / 1e6
    assert abs(record["cost_usd"] - expected_cost) < 1e-12
    assert record["route"] == "model:gpt-4"
    assert record["status"] == 200
    assert record["trace_id"] == raw.headers["x-sidelight-trace-id"]
    text = harness.usage_path.read_text()
    for secret in ("Zanzibar", "4111", OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in text


async def test_builtin_price_table_prices_claude(harness: Harness) -> None:
    harness.apply(SEED_ROUTES)
    message = await harness.ant.messages.create(
        model="claude-3-haiku",
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-sidelight-task-type": "summarization"},
    )
    (record,) = await harness.usage(1)
    expected = (message.usage.input_tokens * 0.25 + message.usage.output_tokens * 1.25) / 1e6
    assert abs(record["cost_usd"] - expected) < 1e-12
