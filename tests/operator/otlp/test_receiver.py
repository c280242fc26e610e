"""The relay's receiver over HTTP: it answers at once, drops when full, refuses what is wrong."""

from __future__ import annotations

import asyncio
import gzip
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from prometheus_client import CollectorRegistry

from sidelight_operator.otlp.forwarder import RetryPolicy
from sidelight_operator.otlp.options import TracingOptions
from sidelight_operator.otlp.receiver import MAX_REQUEST_BYTES
from sidelight_operator.otlp.service import TraceRelay
from tests.operator.otlp.peers import POD, Target, TokenAuthenticator, export_body, sample

FAST = RetryPolicy(attempts=2, base_s=0.001, max_s=0.01, timeout_s=5.0)
PROTOBUF = "application/x-protobuf"
TOKEN = {"Authorization": "Bearer token-chat"}


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


class Running:
    """A started relay forwarding to a target, and a client for it."""

    def __init__(self, relay: TraceRelay, registry: CollectorRegistry, target: Target) -> None:
        self.relay = relay
        self.registry = registry
        self.target = target
        self.authenticator = relay.receiver.authenticator.authenticator
        self.url = f"http://127.0.0.1:{relay.port}/v1/traces"

    async def post(
        self, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, float]:
        """(status, body, seconds taken) of one export request."""
        sent = {"Content-Type": PROTOBUF, **TOKEN, **(headers or {})}
        started = time.monotonic()
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=io.BytesIO(body), headers=sent) as response,
        ):
            return response.status, await response.read(), time.monotonic() - started

    def count(self, name: str, **labels: str) -> float:
        return sample(self.registry, name, **labels)


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    started: list[tuple[TraceRelay, Target]] = []

    async def run(queue_bytes: int = 1 << 20, queue_batches: int = 100) -> Running:
        target = Target()
        await target.start()
        options = TracingOptions(target.url, "127.0.0.1", 0, {}, queue_bytes, queue_batches)
        registry = CollectorRegistry()
        relay = TraceRelay(options, TokenAuthenticator(), registry, FAST)
        await relay.start(None)
        started.append((relay, target))
        return Running(relay, registry, target)

    yield run
    for relay, target in started:
        target.release()
        await relay.stop(0.1)
        await target.stop()


def rejected(answer: bytes) -> int:
    response = trace_service_pb2.ExportTraceServiceResponse.FromString(answer)
    return int(response.partial_success.rejected_spans)


async def test_an_export_is_answered_and_forwarded_as_it_came(start: Start) -> None:
    running = await start()
    body = export_body(3)
    status, answer, _ = await running.post(body)
    assert status == 200
    assert rejected(answer) == 0
    await until(lambda: running.target.bodies)
    assert running.target.bodies == [body]
    await until(lambda: running.count("sidelight_otlp_spans_forwarded_total") == 3)
    assert running.count("sidelight_otlp_spans_received_total") == 3


async def test_a_held_target_never_holds_the_sidecars_and_a_full_queue_drops(
    start: Start,
) -> None:
    running = await start(queue_batches=2)
    running.target.hold()
    status, _, _ = await running.post(export_body(4))
    assert status == 200
    await until(lambda: running.target.arrived == 1)  # in flight, held by the target
    answers = [await running.post(export_body(4)) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200] * 4
    assert [rejected(answer) for _, answer, _ in answers] == [0, 0, 4, 4]
    assert max(seconds for _, _, seconds in answers) < 1.0
    assert running.count("sidelight_otlp_spans_dropped_total", reason="queue_full") == 8
    assert running.count("sidelight_otlp_queue_batches") == 2
    running.target.release()
    await until(lambda: running.count("sidelight_otlp_spans_forwarded_total") == 12)
    assert running.count("sidelight_otlp_spans_received_total") == 20
    assert running.count("sidelight_otlp_queue_bytes") == 0


async def test_the_queue_is_bounded_in_bytes_too(start: Start) -> None:
    size = len(export_body(1))
    running = await start(queue_bytes=size * 3 // 2)
    running.target.hold()
    await running.post(export_body(1))
    await until(lambda: running.target.arrived == 1)
    answers = [await running.post(export_body(1)) for _ in range(2)]
    assert [rejected(answer) for _, answer, _ in answers] == [0, 1]
    assert running.count("sidelight_otlp_queue_bytes") == size


BOMB = gzip.compress(bytes(MAX_REQUEST_BYTES + 1))


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        pytest.param({"Authorization": ""}, export_body(1), 401, id="no-token"),
        pytest.param({"Authorization": "Bearer forged"}, export_body(1), 401, id="bad-token"),
        pytest.param({"Authorization": "Bearer token-other"}, export_body(1), 403, id="other-pod"),
        pytest.param({"Content-Type": "application/json"}, b"{}", 415, id="json"),
        pytest.param({"Content-Encoding": "br"}, export_body(1), 415, id="brotli"),
        pytest.param({}, b"\x0a\x05ab", 400, id="not-otlp"),
        pytest.param({"Content-Encoding": "gzip"}, b"not gzip", 400, id="bad-gzip"),
        pytest.param({"Content-Encoding": "gzip"}, BOMB, 413, id="gzip-bomb"),
        pytest.param({}, bytes(MAX_REQUEST_BYTES + 1), 413, id="too-large"),
    ],
)
async def test_refused_requests_are_answered_with_their_error_and_never_queued(
    start: Start, headers: dict[str, str], body: bytes, status: int
) -> None:
    running = await start()
    answer_status, answer, _ = await running.post(body, headers)
    assert answer_status == status, answer
    assert running.count("sidelight_otlp_requests_refused_total", code=str(status)) == 1
    assert running.count("sidelight_otlp_spans_received_total") == 0
    assert len(running.relay.queue) == 0
    assert running.target.arrived == 0


async def test_an_api_server_failure_asks_the_sidecar_to_retry_later(start: Start) -> None:
    running = await start()
    assert isinstance(running.authenticator, TokenAuthenticator)
    running.authenticator.failure = OSError("connection refused")
    status, _, _ = await running.post(export_body(1))
    assert status == 503
    running.authenticator.failure = None
    status, _, _ = await running.post(export_body(1))
    assert status == 200


async def test_one_token_review_for_many_exports(start: Start) -> None:
    running = await start()
    for _ in range(5):
        assert (await running.post(export_body(1)))[0] == 200
    assert isinstance(running.authenticator, TokenAuthenticator)
    assert running.authenticator.reviews == 1


async def test_gzip_exports_of_the_sdk_exporter_are_forwarded_decompressed(start: Start) -> None:
    running = await start()
    exporter = OTLPSpanExporter(
        endpoint=running.url, headers=TOKEN, compression=Compression.Gzip, timeout=5
    )
    resource = Resource.create({"k8s.namespace.name": POD.namespace, "k8s.pod.name": POD.name})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    def trace() -> None:
        tracer = provider.get_tracer("test")
        with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
            pass

    await asyncio.to_thread(trace)
    await until(lambda: len(running.target.span_names()) == 2)
    assert sorted(running.target.span_names()) == ["inner", "outer"]
    assert not any(h.get("Content-Encoding") == "gzip" for h in running.target.headers)
    provider.shutdown()
