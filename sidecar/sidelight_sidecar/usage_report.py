"""Usage records to the operator: spooled on disk, streamed over ReportUsage, kept until ACKed.

`GrpcUsageSink` is a `UsageSink`: `write` appends a batch to the `UsageSpool`
(nothing waits for the network), and a task of its own streams the spool to
the operator's ReportUsage RPC over the same `ControlPlaneConnection` as the
config stream (the token is read again on every connect):

1. open the stream and send the pod's `Node` (the operator authenticates it
   as it does StreamSnapshots) in a first report without records;
2. send reports of up to `batch_records` records from the first
   unacknowledged one on, with at most `window` reports unanswered; a
   report is the spool's bytes as they are (its frames are `UsageReport`'s
   encoding), so nothing is parsed or serialized again;
3. for every `UsageAck` (one per report, in order, with the report's ids)
   tell the spool, which deletes what is done.

When the stream breaks the unanswered reports are sent again on the next
stream (capped exponential backoff with jitter): delivery is at-least-once
and the operator drops duplicates by id. On `close` the sink stops waiting
for the backoff, tries until the spool is empty or the deadline passes, and
leaves the rest on disk for the next start of the sidecar.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from grpc import aio

from sidelight_proto.v1 import control_plane_pb2, usage_pb2
from sidelight_sidecar.agent import MAX_DOUBLINGS, RECONNECT, ControlPlaneConnection
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.usage_spool import Position, UsageSpool

log = logging.getLogger(__name__)

BATCH_RECORDS = 500
WINDOW = 4
CLOSING_RETRY_S = 0.25
"""While closing, the longest wait between two attempts."""

UsageCall = aio.StreamStreamCall[bytes, control_plane_pb2.UsageAck]
_SERVICE = control_plane_pb2.DESCRIPTOR.services_by_name["ControlPlane"]
REPORT_USAGE = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['ReportUsage'].name}"


class ProtocolError(Exception):
    """The operator answered something other than the next report's ids."""


@dataclass(frozen=True)
class _Sent:
    count: int
    end: Position | None  # None: the first report, which carries no records


class GrpcUsageSink:
    """Spools usage records and streams them to the operator until acknowledged."""

    def __init__(
        self,
        spool: UsageSpool,
        connection: ControlPlaneConnection,
        node: control_plane_pb2.Node,
        *,
        backoff: Backoff = RECONNECT,
        batch_records: int = BATCH_RECORDS,
        window: int = WINDOW,
        rng: random.Random | None = None,
    ) -> None:
        self.spool = spool
        self.connection = connection
        self.node = node
        self.backoff = backoff
        self.batch_records = batch_records
        self.window = window
        self.connected = False
        self.last_error = ""
        self._rng = rng or random.Random()
        self._appended = asyncio.Event()  # the spool has records the stream may not have sent
        self._acked = asyncio.Event()  # an acknowledgement came
        self._wake = asyncio.Event()  # closing: cut the backoff short
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def write(self, records: Sequence[usage_pb2.UsageRecord]) -> None:
        """Append `records` to the spool (what does not fit is counted there)."""
        if await asyncio.to_thread(self.spool.append, records):
            self._appended.set()

    async def start(self) -> None:
        """Take over what the spool holds from before, start streaming."""
        await asyncio.to_thread(self.spool.open)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-report")

    async def close(self, timeout_s: float) -> None:
        """Send what is left for up to `timeout_s`, then stop; the rest stays spooled."""
        self._closing = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    self._acked.clear()
                    if not await asyncio.to_thread(self.spool.pending):
                        break
                    await self._acked.wait()
        except TimeoutError:
            log.warning(
                "usage: %d bytes of records not acknowledged in %.1fs, kept in %s (%s)",
                self.spool.size,
                timeout_s,
                self.spool.directory,
                self.last_error or "no answer",
            )
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.to_thread(self.spool.close)

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._stream()
                error = "the control plane closed the usage stream"
            except aio.AioRpcError as exc:
                error = f"{exc.code().name}: {exc.details()}"
            except (OSError, ProtocolError) as exc:
                error = str(exc)
            except Exception as exc:  # a bug must not stop the reconnects: log it, go on
                log.exception("usage stream failed")
                error = type(exc).__name__
            failures = 1 if self.connected else min(failures + 1, MAX_DOUBLINGS)
            self._disconnected(error)
            delay = self.backoff.delay(failures, self._rng)
            if self._closing:
                delay = min(delay, CLOSING_RETRY_S)
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _stream(self) -> None:
        metadata = self.connection.metadata()
        async with self.connection.channel() as channel:
            # Requests are bytes: a report is written as the spool holds it.
            report_usage = channel.stream_stream(
                REPORT_USAGE,
                request_serializer=None,
                response_deserializer=control_plane_pb2.UsageAck.FromString,
            )
            call: UsageCall = report_usage(None, metadata=metadata)
            try:
                inflight: collections.deque[_Sent] = collections.deque()
                slots = asyncio.Semaphore(self.window)
                # In flight before the write: its ack may be read before the write returns.
                inflight.append(_Sent(0, None))
                await call.write(control_plane_pb2.UsageReport(node=self.node).SerializeToString())
                tasks = {
                    asyncio.create_task(self._send(call, inflight, slots)),
                    asyncio.create_task(self._receive(call, inflight, slots)),
                }
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    task.result()
            finally:
                call.cancel()

    async def _send(
        self, call: UsageCall, inflight: collections.deque[_Sent], slots: asyncio.Semaphore
    ) -> None:
        position = await asyncio.to_thread(self.spool.start)
        while True:
            await slots.acquire()
            while True:
                self._appended.clear()
                batch = await asyncio.to_thread(self.spool.read, position, self.batch_records)
                if batch.count:
                    break
                await self._appended.wait()
            inflight.append(_Sent(batch.count, batch.end))
            await call.write(batch.data)
            position = batch.end

    async def _receive(
        self, call: UsageCall, inflight: collections.deque[_Sent], slots: asyncio.Semaphore
    ) -> None:
        while True:
            ack = await call.read()
            if not isinstance(ack, control_plane_pb2.UsageAck):
                return  # grpc.aio.EOF: the operator ended the stream
            if not inflight or len(ack.ids) != inflight[0].count:
                raise ProtocolError("the usage acknowledgement does not match the report sent")
            sent = inflight.popleft()
            if sent.end is None:
                self._connected()
            else:
                await asyncio.to_thread(self.spool.ack, sent.end)
                slots.release()
            self._acked.set()

    def _connected(self) -> None:
        self.connected = True
        self.last_error = ""
        log.info("reporting usage to the control plane at %s", self.connection.target)

    def _disconnected(self, error: str) -> None:
        if self.connected or error != self.last_error:
            log.warning("usage stream to %s ended (%s)", self.connection.target, error)
        self.connected = False
        self.last_error = error
