"""Where the ledger keeps its leases and notices across operator restarts: SQLite.

One row per lease (its quota, window and counters, written after every
exchange) and one per threshold announced in a window. At start the ledger
loads every row back, so after a restart it charges the same leases as
before (sidecars keep spending what they hold meanwhile and report it when
they reconnect) and announces no threshold twice. `path=None` keeps nothing:
a restart then forgets the window's spending, and the quota starts over.

The operator puts the file next to the usage store (`quota-ledger.db`).
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from sidelight_operator.quota.windows import Window

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    pod TEXT NOT NULL, lease_id TEXT NOT NULL, quota TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL, window_end_ms INTEGER NOT NULL,
    granted_tokens INTEGER NOT NULL, granted_nusd INTEGER NOT NULL,
    returned_tokens INTEGER NOT NULL, returned_nusd INTEGER NOT NULL,
    spent_tokens INTEGER NOT NULL, spent_nusd INTEGER NOT NULL,
    held_tokens INTEGER NOT NULL, held_nusd INTEGER NOT NULL,
    refused INTEGER NOT NULL, closed INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    PRIMARY KEY (pod, lease_id)
);
CREATE TABLE IF NOT EXISTS notices (
    quota TEXT NOT NULL, window_start_ms INTEGER NOT NULL, window_end_ms INTEGER NOT NULL,
    threshold TEXT NOT NULL, at_ms INTEGER NOT NULL,
    PRIMARY KEY (quota, window_start_ms, window_end_ms, threshold)
);
"""
_COLUMNS = (
    "pod, lease_id, quota, window_start_ms, window_end_ms, granted_tokens, granted_nusd, "
    "returned_tokens, returned_nusd, spent_tokens, spent_nusd, held_tokens, held_nusd, "
    "refused, closed, updated_ms"
)


@dataclass
class LeaseRecord:
    """One lease as the ledger charges it; counters are totals over its life."""

    lease_id: str
    pod: str
    quota: str
    window: Window
    granted_tokens: int = 0
    granted_nusd: int = 0
    returned_tokens: int = 0
    returned_nusd: int = 0
    spent_tokens: int = 0
    spent_nusd: int = 0
    held_tokens: int = 0
    held_nusd: int = 0
    refused: int = 0
    closed: bool = False
    updated_ms: int = 0

    def charged(self) -> tuple[int, int]:
        """Tokens and nano-dollars this lease counts for: granted while open, spent once closed."""
        if self.closed:
            return self.spent_tokens, self.spent_nusd
        return (
            max(self.granted_tokens - self.returned_tokens, self.spent_tokens),
            max(self.granted_nusd - self.returned_nusd, self.spent_nusd),
        )

    def debt(self) -> tuple[int, int]:
        """Tokens and nano-dollars spent past what the lease holds (counted low, billed more)."""
        return (
            max(0, self.spent_tokens - self.granted_tokens + self.returned_tokens),
            max(0, self.spent_nusd - self.granted_nusd + self.returned_nusd),
        )

    def row(self) -> tuple[object, ...]:
        """The values of a `leases` row, in column order."""
        return (
            self.pod,
            self.lease_id,
            self.quota,
            self.window.start_ms,
            self.window.end_ms,
            self.granted_tokens,
            self.granted_nusd,
            self.returned_tokens,
            self.returned_nusd,
            self.spent_tokens,
            self.spent_nusd,
            self.held_tokens,
            self.held_nusd,
            self.refused,
            int(self.closed),
            self.updated_ms,
        )


class LedgerStore:
    """Leases and notices in SQLite (`path=None`: nothing is kept)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            self._conn = conn

    def load(self) -> tuple[list[LeaseRecord], list[tuple[str, Window, str]]]:
        """Every lease, and every (quota, window, threshold) announced."""
        if self._conn is None:
            return [], []
        with self._lock:
            rows = self._conn.execute(f"SELECT {_COLUMNS} FROM leases").fetchall()
            notices = self._conn.execute(
                "SELECT quota, window_start_ms, window_end_ms, threshold FROM notices"
            ).fetchall()
        leases = [
            LeaseRecord(
                lease_id=row[1],
                pod=row[0],
                quota=row[2],
                window=Window(row[3], row[4]),
                granted_tokens=row[5],
                granted_nusd=row[6],
                returned_tokens=row[7],
                returned_nusd=row[8],
                spent_tokens=row[9],
                spent_nusd=row[10],
                held_tokens=row[11],
                held_nusd=row[12],
                refused=row[13],
                closed=bool(row[14]),
                updated_ms=row[15],
            )
            for row in rows
        ]
        return leases, [(q, Window(start, end), t) for q, start, end, t in notices]

    def save_lease(self, record: LeaseRecord) -> None:
        """Write a lease's current counters."""
        if self._conn is None:
            return
        marks = ", ".join("?" * 16)
        with self._lock:
            self._conn.execute(
                f"INSERT OR REPLACE INTO leases ({_COLUMNS}) VALUES ({marks})", record.row()
            )

    def save_notice(self, quota: str, window: Window, threshold: str, at_ms: int) -> None:
        """Remember that `threshold` was announced for `quota` in `window`."""
        if self._conn is None:
            return
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO notices VALUES (?, ?, ?, ?, ?)",
                (quota, window.start_ms, window.end_ms, threshold, at_ms),
            )

    def prune(self, before_ms: int) -> None:
        """Delete what belongs to windows that ended before `before_ms`."""
        if self._conn is None:
            return
        with self._lock:
            self._conn.execute("DELETE FROM leases WHERE window_end_ms < ?", (before_ms,))
            self._conn.execute("DELETE FROM notices WHERE window_end_ms < ?", (before_ms,))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
