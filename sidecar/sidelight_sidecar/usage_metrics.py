"""The sidecar's `/metrics`: what became of its usage records, in the Prometheus format.

The sidecar listens on loopback only, so these are read from inside the pod
or through `kubectl port-forward`. Values are read from the queue, the spool
and the reporter when scraped; nothing is counted twice on the request path.

- `sidelight_usage_records_dropped_total{reason}`: records lost, by reason:
  `queue_full` (the in-memory queue), `sink_error` (a sink refused a batch),
  `spool_full` (the on-disk spool reached its size), `spool_error` (the disk
  refused a write).
- `sidelight_usage_spool_bytes`: bytes of records waiting for the operator's
  acknowledgement (or acknowledged, in a segment not yet done).
- `sidelight_usage_spool_torn_segments_total`: segments cut at a torn tail.
- `sidelight_usage_reporting_connected`: 1 while the usage stream is up.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from sidelight_sidecar.usage import UsageQueue
from sidelight_sidecar.usage_report import GrpcUsageSink


class UsageCollector:
    """Reads the usage counters at scrape time."""

    def __init__(self, queue: UsageQueue, reporter: GrpcUsageSink | None) -> None:
        self.queue = queue
        self.reporter = reporter

    def collect(self) -> Iterable[Metric]:
        """The metrics of the module docstring."""
        dropped = CounterMetricFamily(
            "sidelight_usage_records_dropped", "Usage records lost, by reason.", labels=["reason"]
        )
        dropped.add_metric(["queue_full"], self.queue.dropped)
        dropped.add_metric(["sink_error"], self.queue.failed)
        reporter = self.reporter
        if reporter is not None:
            dropped.add_metric(["spool_full"], reporter.spool.dropped_full)
            dropped.add_metric(["spool_error"], reporter.spool.dropped_error)
        yield dropped
        if reporter is None:
            return
        yield GaugeMetricFamily(
            "sidelight_usage_spool_bytes",
            "Bytes of usage records spooled on disk.",
            value=reporter.spool.size,
        )
        yield CounterMetricFamily(
            "sidelight_usage_spool_torn_segments",
            "Spool segments cut at a torn or garbled tail when opened.",
            value=reporter.spool.torn,
        )
        yield GaugeMetricFamily(
            "sidelight_usage_reporting_connected",
            "1 while the usage stream to the operator is up.",
            value=int(reporter.connected),
        )


def build_metrics_handler(queue: UsageQueue, reporter: GrpcUsageSink | None) -> Handler:
    """The aiohttp handler of `/metrics`, with a registry of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(UsageCollector(queue, reporter))
    return make_aiohttp_handler(registry)
