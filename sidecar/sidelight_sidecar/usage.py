"""Usage records: one per request, handed to sinks off the request path.

The request path fills a `UsageRecord` protobuf (cheap: C-implemented) and
puts it on a bounded queue; a background task hands batches to each sink (a
JSON-lines file, the operator through `GrpcUsageSink`). When the queue is
full the record is dropped and counted (`dropped`), never waited for; a
batch a sink fails to take is counted in `failed`.

A batch takes what comes within `linger_s` of its first record, up to
`BATCH` records (no wait when that many are queued already), so a sidecar
serving a request at a time does not pay a sink's per-batch cost
(a disk append, a gRPC report and its acknowledgement, thread hand-offs) for
every request: `bench/usage_bench.py --linger 0` measured that at x1.5 on
the p50 latency one request at a time; with the linger, p50 and CPU per
request are within the noise. `flush` cuts the linger short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from google.protobuf import json_format

from sidelight_proto.v1 import usage_pb2

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
BATCH = 500
LINGER_S = 0.1


class UsageSink(Protocol):
    """Where usage records go (a file in standalone mode, the operator in a cluster)."""

    async def write(self, records: Sequence[usage_pb2.UsageRecord]) -> None:
        """Persist or send a batch of records."""


class JsonLinesSink:
    """Appends records as JSON lines to a file (standalone mode)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def write(self, records: Sequence[usage_pb2.UsageRecord]) -> None:
        """Append `records` to the file, one JSON object a line."""
        lines = "".join(
            json_format.MessageToJson(r, indent=None, preserving_proto_field_name=True) + "\n"
            for r in records
        )
        await asyncio.to_thread(self._append, lines)

    def _append(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(text)


class UsageQueue:
    """A bounded queue between the request path and the sinks."""

    def __init__(
        self, sinks: Sequence[UsageSink] = (), size: int = QUEUE_SIZE, linger_s: float = LINGER_S
    ) -> None:
        self.sinks = list(sinks)  # add sinks before `start`
        self.linger_s = linger_s
        self.dropped = 0
        self.failed = 0
        self._queue: asyncio.Queue[usage_pb2.UsageRecord] = asyncio.Queue(size)
        self._flushing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, record: usage_pb2.UsageRecord) -> None:
        """Queue a record without waiting; drop and count it when full."""
        if not self.sinks:
            return
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        """Start the background writer."""
        if self.sinks and self._task is None:
            self._task = asyncio.create_task(self._run(), name="usage-writer")

    async def flush(self) -> None:
        """Wait until every queued record reached the sinks."""
        self._flushing.set()
        try:
            await self._queue.join()
        finally:
            self._flushing.clear()

    async def stop(self) -> None:
        """Flush and stop the background writer."""
        if self._task is None:
            return
        await self.flush()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._queue.qsize() < BATCH - 1:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger_s):
                        await self._flushing.wait()
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            try:
                for sink in self.sinks:
                    await self._write(sink, batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, sink: UsageSink, batch: list[usage_pb2.UsageRecord]) -> None:
        try:
            await sink.write(batch)
        except OSError as exc:
            self.failed += len(batch)
            log.warning("usage sink failed, %d records lost to it: %s", len(batch), exc)
