"""The relay's sender: queued export requests to the forward target, as they came.

The forwarder takes the oldest queued requests that fit `max_request_bytes`
and POSTs them to `<endpoint>/v1/traces` as one request body: serialized
protobuf messages concatenated are the serialization of their merge (the
repeated `resource_spans` append), so many sidecars' exports go out as one
request with no decoding and no re-encoding. One request is in flight at a
time; the receiver keeps queueing meanwhile, up to the queue's bounds.

A 2xx is success (an OTLP `partial_success` in its body counts the spans the
target rejected as dropped). 429, 502, 503, 504, a connection error or a
timeout are retried with exponential backoff and jitter, honouring
`Retry-After`, up to `RetryPolicy.attempts`; then the spans are dropped as
`unavailable`. Any other status drops them as `rejected` (retrying a request
the target refuses cannot help). Logs name the target's status, never the
request's headers or the URL's credentials (they may carry a vendor's API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import io
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from yarl import URL

from sidelight_operator.otlp.metrics import RelayMetrics
from sidelight_operator.otlp.queue import Export, ExportQueue

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
"""The statuses the OTLP/HTTP specification says to retry."""
MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""Per forward request; a single larger export goes alone."""
PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a forward request is retried."""

    attempts: int = 6
    base_s: float = 0.5
    max_s: float = 30.0
    timeout_s: float = 10.0
    """Per attempt, connecting included."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt `attempt + 1`: the target's Retry-After, else jittered backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_s)
        ceiling = min(self.max_s, self.base_s * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a base URL (its query, if any, kept)."""
    url = URL(endpoint)
    return str(url.with_path(url.path.rstrip("/") + "/v1/traces", keep_query=True))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date); None if absent."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def rejected_spans(body: bytes) -> int:
    """The `partial_success.rejected_spans` of an OTLP response body (0 if none or unreadable)."""
    try:
        response = trace_service_pb2.ExportTraceServiceResponse.FromString(body)
    except DecodeError:
        return 0
    return int(response.partial_success.rejected_spans)


class Forwarder:
    """Sends what the queue holds to one OTLP/HTTP endpoint, one request at a time."""

    def __init__(
        self,
        queue: ExportQueue,
        endpoint: str,
        headers: Mapping[str, str],
        metrics: RelayMetrics,
        policy: RetryPolicy | None = None,
        max_request_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.queue = queue
        self.url = traces_url(endpoint)
        self.shown_url = str(URL(self.url).with_user(None).with_query(None))
        """The URL as logs show it: no user, password or query (they may hold keys)."""
        self.metrics = metrics
        self.policy = policy or RetryPolicy()
        self.max_request_bytes = max_request_bytes
        self._headers = {**headers, "Content-Type": PROTOBUF}
        self._in_flight: list[Export] = []
        self._task: asyncio.Task[None] | None = None
        self._sent = asyncio.Event()
        self._problem: str | None = None

    def start(self) -> None:
        """Start sending, in the running loop."""
        self._task = asyncio.create_task(self._run(), name="otlp forwarder")

    async def stop(self, grace_s: float) -> None:
        """Send what is queued for up to `grace_s` seconds, then stop; the rest is dropped."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._drained(), grace_s)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        left = [*self._in_flight, *self.queue.drain()]
        self._in_flight = []
        if left:
            self.metrics.dropped("shutdown", sum(e.spans for e in left))

    async def _drained(self) -> None:
        while len(self.queue) or self._in_flight:
            self._sent.clear()
            await self._sent.wait()

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                await self.queue.wait()
                self._in_flight = self.queue.take(self.max_request_bytes)
                await self._forward(session, self._in_flight)
                self._in_flight = []
                self._sent.set()

    async def _forward(self, session: aiohttp.ClientSession, batch: list[Export]) -> None:
        body = b"".join(export.payload for export in batch)
        spans = sum(export.spans for export in batch)
        for attempt in range(self.policy.attempts):
            status, retry_after, answer = await self._post(session, body)
            if status is not None and 200 <= status < 300:
                rejected = min(spans, rejected_spans(answer))
                self.metrics.forwarded.inc(spans - rejected)
                if rejected:
                    self.metrics.dropped("rejected", rejected)
                return
            if status is not None and status not in RETRYABLE_STATUS:
                self.metrics.dropped("rejected", spans)
                return
            if attempt + 1 < self.policy.attempts:
                await asyncio.sleep(self.policy.delay(attempt, retry_after))
        self.metrics.dropped("unavailable", spans)

    async def _post(
        self, session: aiohttp.ClientSession, body: bytes
    ) -> tuple[int | None, float | None, bytes]:
        """(status, Retry-After seconds, body); status None when no answer came."""
        try:
            # A BytesIO: aiohttp warns of (and blocks on) large raw-bytes bodies.
            data = io.BytesIO(body)
            async with session.post(self.url, data=data, headers=self._headers) as response:
                answer = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._report(f"is unreachable ({type(exc).__name__})")
            return None, None, b""
        self._report(None if 200 <= response.status < 300 else f"answered {response.status}")
        return response.status, parse_retry_after(response.headers.get("Retry-After")), answer

    def _report(self, problem: str | None) -> None:
        """Log when the target's state changes, not on every request."""
        if problem == self._problem:
            return
        if problem is None:
            log.info("the OTLP forward target %s accepts spans again", self.shown_url)
        else:
            log.warning("the OTLP forward target %s %s", self.shown_url, problem)
        self._problem = problem
