"""The relay's queue: two bounds, FIFO, requests cut to a size."""

from __future__ import annotations

import asyncio

import pytest

from sidelight_operator.otlp.queue import Export, ExportQueue


def export(size: int, spans: int = 1) -> Export:
    return Export(bytes(size), spans)


def test_put_refuses_beyond_either_bound() -> None:
    queue = ExportQueue(max_bytes=100, max_batches=3)
    assert queue.put(export(60))
    assert not queue.put(export(41))
    assert queue.put(export(40))
    assert queue.bytes == 100
    queue = ExportQueue(max_bytes=100, max_batches=2)
    assert queue.put(export(1))
    assert queue.put(export(1))
    assert not queue.put(export(1))
    assert len(queue) == 2


def test_take_is_oldest_first_within_max_bytes_and_at_least_one() -> None:
    queue = ExportQueue(max_bytes=1000, max_batches=10)
    for size in (30, 30, 50, 500):
        assert queue.put(export(size))
    assert [len(e.payload) for e in queue.take(70)] == [30, 30]
    assert [len(e.payload) for e in queue.take(10)] == [50]
    assert queue.bytes == 500
    assert [len(e.payload) for e in queue.drain()] == [500]
    assert queue.bytes == 0
    assert queue.take(100) == []


async def test_wait_returns_while_something_is_queued_only() -> None:
    queue = ExportQueue(max_bytes=10, max_batches=1)
    queue.put(export(1))
    await asyncio.wait_for(queue.wait(), 1.0)
    queue.take(10)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.wait(), 0.05)


@pytest.mark.parametrize(("max_bytes", "max_batches"), [(0, 1), (1, 0)])
def test_bounds_must_be_positive(max_bytes: int, max_batches: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        ExportQueue(max_bytes, max_batches)
