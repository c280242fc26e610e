"""One request's trace, caller -> sidecar -> operator's relay -> an OTLP backend, checked whole.

The caller is an application with its own OpenTelemetry SDK: it starts a
span, sends the chat request with the official `openai` SDK and W3C
`traceparent`, and exports its span to the backend itself. The sidecar
exports its spans as the injection sets it up for the relay: to the
operator's OTLP receiver over HTTPS, trusting the control plane's CA
(`OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`) and proving its pod with its
token file (`SIDELIGHT_OTLP_TOKEN_FILE`). The relay forwards to an
`OtlpReceiver` standing in for Tempo or Jaeger; everything is asserted from
the OTLP bytes that arrive there.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry

from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.otlp.options import TracingOptions
from sidelight_operator.otlp.service import TraceRelay
from sidelight_sidecar.server import Sidecar, SidecarOptions
from sidelight_sidecar.telemetry import TOKEN_FILE_ENV, build_tracer_provider
from tests.operator.otlp.peers import Target, TokenAuthenticator, sample
from tests.sidecar.harness import IDENTITY, OPENAI_KEY, LoopbackServer, OtlpReceiver, compile_routes
from tests.sidecar.test_agent_auth import certificate_authority, pem, serving_pair

SECRET_PROMPT = "Summarize the contract of Zanzibar Quux, card 4111 1111 1111 1111"
ROUTES = """
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: assistant, namespace: shop, generation: 1}
spec:
  backends:
  - name: gpt-4
    provider: openai
    model: gpt-4
    endpoints: [{url: "OPENAI_URL/v1"}]
    credentials: {secretRef: {name: openai, key: api-key}}
  routes:
  - name: default
    routeTo: gpt-4
  retry: {attempts: 2, backoff: {base: 1ms, max: 5ms}}
  timeouts: {request: 10s, attempt: 5s, connect: 1s}
"""


async def until(condition: Callable[[], object], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


@dataclass
class TracePath:
    """A sidecar exporting to a relay that forwards to `backend`."""

    sidecar: Sidecar
    relay: TraceRelay
    registry: CollectorRegistry
    provider: FakeProvider
    oai: openai.AsyncOpenAI

    def count(self, name: str, **labels: str) -> float:
        return sample(self.registry, name, **labels)


Start = Callable[[LoopbackServer], Awaitable[TracePath]]


@pytest.fixture
async def trace_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Start]:
    """Start the path to a given backend (started here too); everything stops after."""
    ca_key, ca_cert = certificate_authority()
    cert_pem, key_pem = serving_pair(ca_key, ca_cert)
    for name, data in (("ca.crt", pem(ca_cert)), ("tls.crt", cert_pem), ("tls.key", key_pem)):
        (tmp_path / name).write_bytes(data)
    (tmp_path / "token").write_text("token-chat\n")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    # What the injection sets on the sidecar container for the relay (otlpViaOperator).
    monkeypatch.setenv(TOKEN_FILE_ENV, str(tmp_path / "token"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", str(tmp_path / "ca.crt"))
    running: list[TracePath] = []
    backends: list[LoopbackServer] = []

    async def start(backend: LoopbackServer) -> TracePath:
        await backend.start()
        backends.append(backend)
        registry = CollectorRegistry()
        options = TracingOptions(backend.url, "127.0.0.1", 0)
        relay = TraceRelay(options, TokenAuthenticator(), registry)
        await relay.start(tls)
        provider = FakeProvider("openai", api_keys={"openai": OPENAI_KEY})
        await provider.start()
        sidecar = Sidecar(
            SidecarOptions(port=0, otlp_endpoint=f"https://127.0.0.1:{relay.port}"),
            identity=IDENTITY,
        )
        await sidecar.start()
        reason = sidecar.store.apply(compile_routes(ROUTES.replace("OPENAI_URL", provider.url)))
        assert reason is None, reason
        oai = openai.AsyncOpenAI(base_url=f"{sidecar.url}/v1", api_key="placeholder", max_retries=0)
        path = TracePath(sidecar, relay, registry, provider, oai)
        running.append(path)
        return path

    yield start
    for path in running:
        await path.oai.close()
        await path.sidecar.stop()
        await path.relay.stop(0.1)
        await path.provider.stop()
    for backend in backends:
        if isinstance(backend, Target):
            backend.release()
        await backend.stop()


def attributes(span: trace_pb2.Span) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for kv in span.attributes:
        kind = kv.value.WhichOneof("value")
        values[kv.key] = getattr(kv.value, kind) if kind else None
    return values


def resource_of(backend: OtlpReceiver, span: trace_pb2.Span) -> dict[str, str]:
    for request in backend.requests:
        for resource_spans in request.resource_spans:
            for scope in resource_spans.scope_spans:
                if span in scope.spans:
                    attrs = resource_spans.resource.attributes
                    return {kv.key: kv.value.string_value for kv in attrs}
    raise AssertionError(f"span {span.name} not found")


async def test_one_trace_from_the_caller_through_the_relay_to_the_backend(
    trace_path: Start,
) -> None:
    backend = OtlpReceiver()
    path = await trace_path(backend)
    path.provider.add_fault(FaultRule(status=503, times=1))
    app = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    app.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{backend.url}/v1/traces"))
    )
    carrier: dict[str, str] = {}
    with app.get_tracer("checkout").start_as_current_span(
        "summarize", kind=SpanKind.CLIENT
    ) as caller:
        TraceContextTextMapPropagator().inject(carrier)
        raw = await path.oai.chat.completions.with_raw_response.create(
            model="gpt-4",
            messages=[{"role": "user", "content": SECRET_PROMPT}],
            max_tokens=16,
            extra_headers=carrier,
        )
    completion = raw.parse()
    trace_id = caller.get_span_context().trace_id.to_bytes(16, "big")
    caller_id = caller.get_span_context().span_id.to_bytes(8, "big")
    assert raw.headers["x-sidelight-trace-id"] == trace_id.hex()
    await asyncio.to_thread(app.force_flush)
    await asyncio.to_thread(path.sidecar.tracer_provider.force_flush)
    await until(lambda: len(backend.spans()) >= 5)
    app.shutdown()

    spans = backend.spans()
    assert len(spans) == 5, [s.name for s in spans]
    assert {s.trace_id for s in spans} == {trace_id}
    (root,) = [s for s in spans if s.name == "summarize"]
    assert root.span_id == caller_id
    assert root.parent_span_id == b""
    (server,) = [s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_SERVER]
    assert server.name == "POST /v1/chat/completions"
    assert server.parent_span_id == caller_id
    (route,) = [s for s in spans if s.name == "sidelight.route"]
    assert route.parent_span_id == server.span_id
    calls = [s for s in spans if s.kind == trace_pb2.Span.SPAN_KIND_CLIENT and s is not root]
    assert [c.name for c in calls] == ["chat gpt-4", "chat gpt-4"]
    assert all(c.parent_span_id == server.span_id for c in calls)
    failed, served = sorted(calls, key=lambda c: c.start_time_unix_nano)
    assert failed.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert served.status.code != trace_pb2.Status.STATUS_CODE_ERROR
    assert completion.usage is not None
    gen_ai = attributes(served)
    assert gen_ai["gen_ai.operation.name"] == "chat"
    assert gen_ai["gen_ai.provider.name"] == "openai"
    assert gen_ai["gen_ai.request.model"] == "gpt-4"
    assert gen_ai["gen_ai.request.max_tokens"] == 16
    assert gen_ai["gen_ai.response.model"] == completion.model
    assert gen_ai["gen_ai.usage.input_tokens"] == completion.usage.prompt_tokens
    assert gen_ai["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens
    assert attributes(server)["sidelight.attempts"] == 2
    sidecar_resource = resource_of(backend, server)
    assert sidecar_resource["k8s.namespace.name"] == IDENTITY.namespace
    assert sidecar_resource["k8s.pod.name"] == IDENTITY.pod
    assert resource_of(backend, root)["service.name"] == "checkout"
    # The sidecar's four spans came through the relay, none of them dropped or refused.
    assert path.count("sidelight_otlp_spans_forwarded_total") == 4
    assert path.count("sidelight_otlp_spans_received_total") == 4
    wire = b"".join(backend.raw)
    for secret in (b"Zanzibar", b"4111", OPENAI_KEY.encode(), b"token-chat"):
        assert secret not in wire


async def test_a_backend_that_hangs_delays_neither_requests_nor_the_sidecars_exports(
    trace_path: Start,
) -> None:
    backend = Target()
    backend.hold()
    path = await trace_path(backend)
    for _ in range(3):
        started = time.monotonic()
        await path.oai.chat.completions.create(
            model="gpt-4", messages=[{"role": "user", "content": "hi"}]
        )
        assert time.monotonic() - started < 2.0
        started = time.monotonic()
        flushed = await asyncio.to_thread(path.sidecar.tracer_provider.force_flush, 5000)
        assert flushed
        assert time.monotonic() - started < 2.0
    await until(lambda: path.count("sidelight_otlp_spans_received_total") >= 9)
    assert backend.arrived == 1
    backend.release()
    await until(lambda: path.count("sidelight_otlp_spans_forwarded_total") >= 9)
    assert path.count("sidelight_otlp_spans_dropped_total", reason="queue_full") == 0


async def test_the_token_is_read_at_each_export_and_only_when_named(tmp_path: Path) -> None:
    backend = Target()
    await backend.start()
    token = tmp_path / "token"
    token.write_text("first\n")
    proving = build_tracer_provider(IDENTITY, backend.url, {TOKEN_FILE_ENV: str(token)})
    plain = build_tracer_provider(IDENTITY, backend.url, {})
    try:
        for provider, content in ((proving, None), (proving, "rotated\n"), (plain, None)):
            if content is not None:
                token.write_text(content)
            provider.get_tracer("t").start_span("s").end()
            assert await asyncio.to_thread(provider.force_flush)
    finally:
        proving.shutdown()
        plain.shutdown()
        await backend.stop()
    assert [h.get("Authorization") for h in backend.headers] == [
        "Bearer first",
        "Bearer rotated",
        None,
    ]
