"""The relay's queue: export requests waiting for the forward target, bounded twice.

Each item is one export request as a sidecar sent it (serialized
`ExportTraceServiceRequest`, uncompressed) and its span count. The queue
holds at most `max_bytes` of payload and `max_batches` items; `put` of an
item that does not fit returns False at once and the caller drops and counts
it, so a slow or absent target never slows a sidecar down. `take` hands the
forwarder the oldest items that fit one forward request; their bytes leave
the bound then, so memory is at most the bound plus the request in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Export:
    """One received export request: its protobuf bytes and how many spans they hold."""

    payload: bytes
    spans: int


class ExportQueue:
    """FIFO of `Export`s bounded in bytes and in items; `put` never waits."""

    def __init__(self, max_bytes: int, max_batches: int) -> None:
        if max_bytes < 1 or max_batches < 1:
            raise ValueError("queue bounds must be positive")
        self.max_bytes = max_bytes
        self.max_batches = max_batches
        self.bytes = 0
        self._items: deque[Export] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, export: Export) -> bool:
        """Queue `export` if it fits both bounds; False (nothing queued) if not."""
        full = len(self._items) >= self.max_batches
        if full or self.bytes + len(export.payload) > self.max_bytes:
            return False
        self._items.append(export)
        self.bytes += len(export.payload)
        self._ready.set()
        return True

    def take(self, max_bytes: int) -> list[Export]:
        """The oldest items whose payloads total at most `max_bytes` (at least one, if any)."""
        taken: list[Export] = []
        size = 0
        while self._items and (not taken or size + len(self._items[0].payload) <= max_bytes):
            export = self._items.popleft()
            size += len(export.payload)
            taken.append(export)
        self.bytes -= size
        if not self._items:
            self._ready.clear()
        return taken

    def drain(self) -> list[Export]:
        """Everything queued, emptying the queue."""
        items = list(self._items)
        self._items.clear()
        self.bytes = 0
        self._ready.clear()
        return items

    async def wait(self) -> None:
        """Return when the queue holds something."""
        await self._ready.wait()
