"""The usage store: an embedded SQLite database of usage records and their rollups.

- `records`: one row per request, kept for `retention` (default 30 days) and
  deleted after that; the source of exact edges of a time range and of the
  most expensive requests with their trace ids.
- `hourly` and `daily`: per hour and per UTC day, per combination of every
  dimension (dimensions.py), the sums of requests, errors, tokens, cost and
  latency; kept for `rollup_retention` (default 400 days). A query reads
  whole days from `daily`, whole hours at the ends from `hourly` and only the
  ragged seconds from `records` (queries.py), so long ranges read few rows.

Cost is stored as integer nano-dollars (`cost_nusd`), so sums are exact and
do not depend on the order records arrived in.

`ingest` is exactly-once by record id: a record whose id the store holds is
dropped, so sidecars may deliver at least once. A record older than the
retention horizon cannot be checked against the ids and is dropped as well
(`stale_dropped` counts them). Writes take one lock (one operator replica
writes; docs/usage.md); a file-backed store reads over its own WAL connection
so a long query does not hold up ingest.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from sidelight_operator.usage import queries
from sidelight_operator.usage.dimensions import DIMENSIONS, Row, to_row
from sidelight_proto.v1 import usage_pb2

DAY_S = 86_400.0
DEFAULT_RETENTION_S = 30 * DAY_S
DEFAULT_ROLLUP_RETENTION_S = 400 * DAY_S
DEFAULT_PRUNE_INTERVAL_S = 600.0
SCHEMA_VERSION = 1

Listener = Callable[[Sequence[usage_pb2.UsageRecord]], None]

_DIM_COLUMNS = ", ".join(DIMENSIONS)
_ROLLUP_TABLE = f"""
CREATE TABLE IF NOT EXISTS {{table}} (
    {{unit}} INTEGER NOT NULL,
    namespace TEXT NOT NULL, team TEXT NOT NULL, application TEXT NOT NULL,
    environment TEXT NOT NULL, requested_model TEXT NOT NULL, served_model TEXT NOT NULL,
    backend TEXT NOT NULL, route TEXT NOT NULL, fallback INTEGER NOT NULL,
    guardrail TEXT NOT NULL,
    requests INTEGER NOT NULL, errors INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_nusd INTEGER NOT NULL, latency_ms REAL NOT NULL,
    PRIMARY KEY ({{unit}}, {_DIM_COLUMNS})
) WITHOUT ROWID;
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS records (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    namespace TEXT NOT NULL, team TEXT NOT NULL, application TEXT NOT NULL,
    environment TEXT NOT NULL, requested_model TEXT NOT NULL, served_model TEXT NOT NULL,
    backend TEXT NOT NULL, route TEXT NOT NULL, fallback INTEGER NOT NULL,
    guardrail TEXT NOT NULL,
    pod TEXT NOT NULL, endpoint TEXT NOT NULL, stream INTEGER NOT NULL,
    attempts INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
    cost_nusd INTEGER NOT NULL, latency_ms REAL NOT NULL, status INTEGER NOT NULL,
    error_type TEXT NOT NULL, error INTEGER NOT NULL, trace_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_cost ON records (cost_nusd);
{_ROLLUP_TABLE.format(table="hourly", unit="hour")}
{_ROLLUP_TABLE.format(table="daily", unit="day")}
"""
_INSERT_RECORD = f"""
INSERT OR IGNORE INTO records (id, ts, {_DIM_COLUMNS}, pod, endpoint, stream, attempts,
    input_tokens, output_tokens, cost_nusd, latency_ms, status, error_type, error, trace_id)
VALUES ({", ".join("?" * (len(DIMENSIONS) + 14))})
"""
_UPSERT_ROLLUP = f"""
INSERT INTO {{table}} ({{unit}}, {_DIM_COLUMNS}, requests, errors, input_tokens, output_tokens,
    cost_nusd, latency_ms)
VALUES ({", ".join("?" * (len(DIMENSIONS) + 7))})
ON CONFLICT ({{unit}}, {_DIM_COLUMNS}) DO UPDATE SET
    requests = requests + excluded.requests,
    errors = errors + excluded.errors,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    cost_nusd = cost_nusd + excluded.cost_nusd,
    latency_ms = latency_ms + excluded.latency_ms
"""
_ROLLUPS = (("hourly", "hour", 3_600), ("daily", "day", 86_400))
# SQLite allows 32766 host parameters since 3.32; stay well below.
_ID_CHUNK = 900


def _connect(target: str) -> sqlite3.Connection:
    conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


class UsageStore:
    """Usage records and their rollups in SQLite; `path=None` keeps them in memory."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        retention_s: float = DEFAULT_RETENTION_S,
        rollup_retention_s: float = DEFAULT_ROLLUP_RETENTION_S,
        prune_interval_s: float = DEFAULT_PRUNE_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention_s = retention_s
        self.rollup_retention_s = rollup_retention_s
        self.prune_interval_s = prune_interval_s
        self.clock = clock
        self.listeners: list[Listener] = []
        self.stale_dropped = 0
        self._lock = threading.Lock()
        self._writer = _connect(str(path) if path is not None else ":memory:")
        self._writer.executescript(_SCHEMA)
        self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        if path is not None:
            self._reader = _connect(str(path))
            self._read_lock = threading.Lock()
        else:
            self._reader = self._writer
            self._read_lock = self._lock
        self._last_prune = 0.0

    def close(self) -> None:
        """Close the database; the store is unusable afterwards."""
        with self._lock:
            if self._reader is not self._writer:
                self._reader.close()
            self._writer.close()

    def ingest(self, records: Sequence[usage_pb2.UsageRecord]) -> int:
        """Store the records whose ids are new; return how many were new.

        Thread-safe. Listeners see exactly the new records, after they are
        committed, in ingest order.
        """
        if not records:
            return 0
        now = self.clock()
        horizon = now - self.retention_s
        with self._lock:
            if now - self._last_prune >= self.prune_interval_s:
                self._prune_locked(now)
            candidates: dict[str, tuple[usage_pb2.UsageRecord, Row]] = {}
            for record in records:
                if not record.id or record.id in candidates:
                    continue
                row = to_row(record, now)
                if row.ts < horizon:
                    self.stale_dropped += 1
                    continue
                candidates[record.id] = (record, row)
            for known in self._known_ids(list(candidates)):
                del candidates[known]
            if candidates:
                rows = [row for _, row in candidates.values()]
                self._write(rows)
            new = [record for record, _ in candidates.values()]
            if new:
                for listener in self.listeners:
                    listener(new)
        return len(new)

    def prune(self) -> tuple[int, int]:
        """Delete records and rollups past their retention: (records, rollup rows, both tables)."""
        with self._lock:
            return self._prune_locked(self.clock())

    def cost_by(self, by: str, since: float, until: float) -> queries.CostReport:
        """Cost and tokens per value of the dimension `by`, with a per-day trend."""
        with self.reading() as conn:
            return queries.cost_by(conn, by, since, until)

    def top(self, limit: int, since: float, until: float) -> queries.TopReport:
        """The most expensive requests, with their trace ids."""
        with self.reading() as conn:
            return queries.top(conn, limit, since, until)

    def rates(self, since: float, until: float) -> queries.RatesReport:
        """Error, fallback and guardrail-verdict rates."""
        with self.reading() as conn:
            return queries.rates(conn, since, until)

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for queries (queries.py), held exclusively meanwhile."""
        with self._read_lock:
            yield self._reader

    def _known_ids(self, ids: list[str]) -> list[str]:
        known: list[str] = []
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            marks = ", ".join("?" * len(chunk))
            cursor = self._writer.execute(f"SELECT id FROM records WHERE id IN ({marks})", chunk)
            known.extend(found for (found,) in cursor)
        return known

    def _write(self, rows: list[Row]) -> None:
        upserts: list[tuple[str, list[tuple[object, ...]]]] = []
        for table, unit, seconds in _ROLLUPS:
            sums: dict[tuple[object, ...], list[float]] = {}
            for row in rows:
                key = (int(row.ts // seconds), *row.dims)
                found = sums.get(key)
                if found is None:
                    sums[key] = list(row.measures())
                else:
                    for index, value in enumerate(row.measures()):
                        found[index] += value
            sql = _UPSERT_ROLLUP.format(table=table, unit=unit)
            upserts.append((sql, [(*key, *values) for key, values in sums.items()]))
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_INSERT_RECORD, [row.columns() for row in rows])
            for sql, values in upserts:
                conn.executemany(sql, values)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _prune_locked(self, now: float) -> tuple[int, int]:
        self._last_prune = now
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            records = conn.execute(
                "DELETE FROM records WHERE ts < ?", (now - self.retention_s,)
            ).rowcount
            rollups = 0
            for table, unit, seconds in _ROLLUPS:
                first = int((now - self.rollup_retention_s) // seconds)
                sql = f"DELETE FROM {table} WHERE {unit} < ?"
                rollups += conn.execute(sql, (first,)).rowcount
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return records, rollups
