"""The forwarder against a scripted OTLP target: batching, retries, drops, shutdown."""

from __future__ import annotations

import asyncio
import datetime
import email.utils
from collections.abc import AsyncIterator, Callable

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from prometheus_client import CollectorRegistry

from sidelight_operator.otlp.forwarder import (
    Forwarder,
    RetryPolicy,
    parse_retry_after,
    traces_url,
)
from sidelight_operator.otlp.metrics import RelayMetrics
from sidelight_operator.otlp.queue import Export, ExportQueue
from tests.operator.otlp.peers import Target, export_body, sample

FAST = RetryPolicy(attempts=3, base_s=0.001, max_s=0.01, timeout_s=2.0)
SECRET_KEY = "dd-secret-0123456789"


async def until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    await server.start()
    yield server
    server.release()
    await server.stop()


class Relay:
    """A queue, its metrics and a forwarder to `url`."""

    def __init__(
        self,
        url: str,
        policy: RetryPolicy = FAST,
        max_request_bytes: int = 1 << 20,
        queue_bytes: int = 1 << 20,
    ) -> None:
        self.registry = CollectorRegistry()
        self.queue = ExportQueue(max_bytes=queue_bytes, max_batches=100)
        self.metrics = RelayMetrics(self.registry, self.queue)
        self.forwarder = Forwarder(
            self.queue, url, {"DD-API-KEY": SECRET_KEY}, self.metrics, policy, max_request_bytes
        )

    def put(self, spans: int, name: str = "span") -> None:
        assert self.queue.put(Export(export_body(spans, name), spans))

    def count(self, name: str, **labels: str) -> float:
        return sample(self.registry, name, **labels)


async def test_queued_exports_go_out_concatenated_in_one_request(target: Target) -> None:
    relay = Relay(target.url)
    relay.put(2, "a")
    relay.put(3, "b")
    relay.put(1, "c")
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 6)
    await relay.forwarder.stop(1.0)
    (body,) = target.bodies
    assert body == export_body(2, "a") + export_body(3, "b") + export_body(1, "c")
    assert len(target.requests()[0].resource_spans) == 3
    assert target.span_names() == ["a-0", "a-1", "b-0", "b-1", "b-2", "c-0"]
    (headers,) = target.headers
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["DD-API-KEY"] == SECRET_KEY
    assert relay.queue.bytes == 0


async def test_a_request_holds_at_most_max_request_bytes(target: Target) -> None:
    size = len(export_body(1))
    relay = Relay(target.url, max_request_bytes=2 * size)
    for _ in range(5):
        relay.put(1)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 5)
    await relay.forwarder.stop(1.0)
    assert [len(b) // size for b in target.bodies] == [2, 2, 1]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retryable_answers_are_retried(target: Target, status: int) -> None:
    target.statuses.extend([status, status])
    relay = Relay(target.url)
    relay.put(4)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 4)
    await relay.forwarder.stop(1.0)
    assert len(target.bodies) == 3
    assert len(set(target.bodies)) == 1
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="unavailable") == 0


async def test_after_the_last_attempt_the_spans_are_dropped_as_unavailable(target: Target) -> None:
    target.statuses.extend([503] * 3)
    relay = Relay(target.url)
    relay.put(4)
    relay.put(1)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_dropped_total", reason="unavailable"))
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="unavailable") == 5
    assert len(target.bodies) == FAST.attempts
    relay.put(2)
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 2)
    await relay.forwarder.stop(1.0)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
async def test_other_errors_drop_at_once_as_rejected(target: Target, status: int) -> None:
    target.statuses.append(status)
    relay = Relay(target.url)
    relay.put(3)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_dropped_total", reason="rejected"))
    await relay.forwarder.stop(1.0)
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="rejected") == 3
    assert len(target.bodies) == 1


async def test_a_partial_success_counts_the_rejected_spans(target: Target) -> None:
    answer = trace_service_pb2.ExportTraceServiceResponse()
    answer.partial_success.rejected_spans = 2
    target.answer = answer.SerializeToString()
    relay = Relay(target.url)
    relay.put(5)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 3)
    await relay.forwarder.stop(1.0)
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="rejected") == 2


async def test_an_unreachable_target_drops_after_the_attempts(target: Target) -> None:
    url = target.url
    await target.stop()
    relay = Relay(url)
    relay.put(3)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_dropped_total", reason="unavailable"))
    await relay.forwarder.stop(1.0)
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="unavailable") == 3


async def test_stop_sends_what_is_queued_within_the_grace(target: Target) -> None:
    relay = Relay(target.url)
    relay.forwarder.start()
    for _ in range(3):
        relay.put(2)
    await relay.forwarder.stop(5.0)
    assert relay.count("sidelight_otlp_spans_forwarded_total") == 6
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="shutdown") == 0


async def test_stop_drops_what_a_held_target_did_not_take(target: Target) -> None:
    target.hold()
    relay = Relay(target.url, max_request_bytes=1)
    relay.put(2)
    relay.put(3)
    relay.forwarder.start()
    await until(lambda: target.arrived == 1)
    await relay.forwarder.stop(0.05)
    assert relay.count("sidelight_otlp_spans_dropped_total", reason="shutdown") == 5
    assert relay.count("sidelight_otlp_spans_forwarded_total") == 0
    assert relay.queue.bytes == 0


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(base_s=1.0, max_s=5.0)
    assert [0.5 <= policy.delay(0, None) <= 1.0 for _ in range(50)] == [True] * 50
    assert [2.0 <= policy.delay(2, None) <= 4.0 for _ in range(50)] == [True] * 50
    assert [2.5 <= policy.delay(9, None) <= 5.0 for _ in range(50)] == [True] * 50
    assert policy.delay(0, 3.0) == 3.0
    assert policy.delay(0, 60.0) == 5.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=30)
    seconds = parse_retry_after(email.utils.format_datetime(later, usegmt=True))
    assert seconds is not None
    assert 25 < seconds <= 30


def test_the_traces_path_is_appended_to_the_base_url() -> None:
    assert traces_url("http://agent:4318") == "http://agent:4318/v1/traces"
    assert traces_url("https://otlp.example/prefix/") == "https://otlp.example/prefix/v1/traces"
    assert traces_url("https://otlp.example?key=k") == "https://otlp.example/v1/traces?key=k"


async def test_logs_name_the_target_without_its_credentials(
    target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    target.statuses.append(401)
    host = target.url.removeprefix("http://")
    relay = Relay(f"http://user:{SECRET_KEY}@{host}/?api_key={SECRET_KEY}")
    relay.put(1)
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_dropped_total", reason="rejected"))
    await relay.forwarder.stop(1.0)
    assert f"{host}/v1/traces answered 401" in caplog.text
    assert SECRET_KEY not in caplog.text


async def test_requests_of_megabytes_go_out_whole(target: Target) -> None:
    relay = Relay(target.url, max_request_bytes=4 << 20, queue_bytes=8 << 20)
    big = export_body(20_000)
    for _ in range(3):
        assert relay.queue.put(Export(big, 20_000))
    relay.forwarder.start()
    await until(lambda: relay.count("sidelight_otlp_spans_forwarded_total") == 60_000)
    await relay.forwarder.stop(1.0)
    assert len(big) > 1 << 19
    assert target.bodies == [big * 3]
