"""UsageStore ingest: exactly-once by id, rollups, retention, restart, threads."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from sidelight_operator.usage.store import DAY_S, UsageStore
from sidelight_proto.v1 import usage_pb2
from tests.operator.usage.factory import T0, record


def totals(store: UsageStore) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(requests, input, output, cost) summed over the records and over the rollups."""
    with store.reading() as conn:
        raw = conn.execute(
            "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nusd) FROM records"
        ).fetchone()
        rolled = conn.execute(
            "SELECT SUM(requests), SUM(input_tokens), SUM(output_tokens), SUM(cost_nusd)"
            " FROM hourly"
        ).fetchone()
    return tuple(raw), tuple(rolled)


def clock_at(ts: float) -> list[float]:
    return [ts]


def test_ingest_counts_each_id_once() -> None:
    store = UsageStore(clock=lambda: T0 + 60)
    first = [record("a", input_tokens=10), record("b", input_tokens=20), record("a")]
    assert store.ingest(first) == 2
    assert store.ingest([record("b"), record("c", input_tokens=40, cost_usd=0.5)]) == 1
    assert store.ingest([]) == 0
    raw, rolled = totals(store)
    assert raw == (3, 70, 150, 520_000_000)
    assert rolled == raw


def test_records_without_id_are_dropped() -> None:
    store = UsageStore(clock=lambda: T0)
    assert store.ingest([record("")]) == 0


def test_rollups_group_by_hour_and_dimensions() -> None:
    store = UsageStore(clock=lambda: T0 + 7200)
    store.ingest(
        [
            record("a", T0 + 10, team="payments"),
            record("b", T0 + 20, team="payments", fallback=True),
            record("c", T0 + 30, team="search"),
            record("d", T0 + 3600, team="payments"),
        ]
    )
    with store.reading() as conn:
        rows = conn.execute(
            "SELECT hour, team, fallback, requests FROM hourly ORDER BY hour, team, fallback"
        ).fetchall()
    hour = int(T0 // 3600)
    assert rows == [
        (hour, "payments", 0, 1),
        (hour, "payments", 1, 1),
        (hour, "search", 0, 1),
        (hour + 1, "payments", 0, 1),
    ]


def test_listeners_see_exactly_the_new_records() -> None:
    store = UsageStore(clock=lambda: T0)
    seen: list[str] = []

    def listen(records: Sequence[usage_pb2.UsageRecord]) -> None:
        seen.extend(r.id for r in records)

    store.listeners.append(listen)
    store.ingest([record("a"), record("b")])
    store.ingest([record("b"), record("c"), record("c")])
    assert seen == ["a", "b", "c"]


def test_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "usage" / "usage.db"
    store = UsageStore(path, clock=lambda: T0)
    assert store.ingest([record("a"), record("b")]) == 2
    store.close()
    reopened = UsageStore(path, clock=lambda: T0)
    assert reopened.ingest([record("a"), record("c")]) == 1
    raw, rolled = totals(reopened)
    assert raw[0] == rolled[0] == 3
    reopened.close()


def test_concurrent_ingest_is_exactly_once(tmp_path: Path) -> None:
    store = UsageStore(tmp_path / "usage.db", clock=lambda: T0)
    batches = [[record(f"r{i}") for i in range(start, start + 300)] for start in range(0, 900, 150)]
    new: list[int] = []

    def work(batch: list[usage_pb2.UsageRecord]) -> None:
        new.append(store.ingest(batch))

    threads = [threading.Thread(target=work, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(new) == 1050
    raw, rolled = totals(store)
    assert raw[0] == rolled[0] == 1050
    store.close()


def test_retention_prunes_records_and_keeps_rollups() -> None:
    now = clock_at(T0)
    store = UsageStore(retention_s=DAY_S, rollup_retention_s=10 * DAY_S, clock=lambda: now[0])
    store.ingest([record("old", T0 - 100), record("new", T0)])
    now[0] = T0 + DAY_S
    assert store.prune() == (1, 0)
    raw, rolled = totals(store)
    assert raw[0] == 1
    assert rolled[0] == 2
    now[0] = T0 + 11 * DAY_S
    assert store.prune() == (1, 4)  # two hourly and two daily rows


def test_records_older_than_retention_are_dropped_and_counted() -> None:
    store = UsageStore(retention_s=DAY_S, clock=lambda: T0)
    assert store.ingest([record("late", T0 - 2 * DAY_S), record("ok", T0 - 10)]) == 1
    assert store.stale_dropped == 1


def test_ingest_prunes_periodically() -> None:
    now = clock_at(T0)
    store = UsageStore(retention_s=DAY_S, prune_interval_s=3600, clock=lambda: now[0])
    store.ingest([record("a", T0)])
    now[0] = T0 + DAY_S + 1
    store.ingest([record("b", now[0])])
    raw, _ = totals(store)
    assert raw[0] == 1
