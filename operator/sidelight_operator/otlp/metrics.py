"""Prometheus metrics of the trace relay, in the operator's registry (served on /metrics).

- `sidelight_otlp_spans_received_total`: spans in accepted export requests;
- `sidelight_otlp_spans_forwarded_total`: spans the target accepted;
- `sidelight_otlp_spans_dropped_total{reason}`: `queue_full` (the target is
  slow or down and the queue is at a bound), `rejected` (the target answered
  a non-retryable error), `unavailable` (retries exhausted), `shutdown` (still
  queued when the operator stopped);
- `sidelight_otlp_requests_refused_total{code}`: export requests answered
  with an HTTP error (401, 403, 400, 413, 415) and not queued;
- `sidelight_otlp_queue_bytes`, `sidelight_otlp_queue_batches`: what waits.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge

from sidelight_operator.otlp.queue import ExportQueue

DropReason = Literal["queue_full", "rejected", "unavailable", "shutdown"]


class RelayMetrics:
    """The relay's counters and queue gauges."""

    def __init__(self, registry: CollectorRegistry, queue: ExportQueue) -> None:
        self.received = Counter(
            "sidelight_otlp_spans_received",
            "Spans received from sidecars in accepted OTLP export requests.",
            registry=registry,
        )
        self.forwarded = Counter(
            "sidelight_otlp_spans_forwarded",
            "Spans the forward target accepted.",
            registry=registry,
        )
        self._dropped = Counter(
            "sidelight_otlp_spans_dropped",
            "Spans received but never forwarded, by reason.",
            ("reason",),
            registry=registry,
        )
        self._refused = Counter(
            "sidelight_otlp_requests_refused",
            "OTLP export requests refused with an HTTP error, by status code.",
            ("code",),
            registry=registry,
        )
        bytes_gauge = Gauge(
            "sidelight_otlp_queue_bytes",
            "Bytes of spans waiting for the forward target.",
            registry=registry,
        )
        bytes_gauge.set_function(lambda: queue.bytes)
        batches_gauge = Gauge(
            "sidelight_otlp_queue_batches",
            "Export requests waiting for the forward target.",
            registry=registry,
        )
        batches_gauge.set_function(lambda: len(queue))

    def dropped(self, reason: DropReason, spans: int) -> None:
        """Count `spans` dropped for `reason`."""
        self._dropped.labels(reason).inc(spans)

    def refused(self, code: int) -> None:
        """Count one export request refused with HTTP `code`."""
        self._refused.labels(str(code)).inc()
