"""Usage aggregation: the records sidecars report, stored, rolled up and shown.

- `UsageStore(path)`: SQLite records and hourly rollups; `ingest(records)` is
  thread-safe and exactly-once by record id.

See docs/usage.md.
"""

from sidelight_operator.usage.store import UsageStore

__all__ = ["UsageStore"]
