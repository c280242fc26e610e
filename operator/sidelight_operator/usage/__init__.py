"""Usage aggregation: the records sidecars report, stored, rolled up and shown.

- `UsageStore(path)` (store.py): SQLite records and hourly rollups;
  `ingest(records)` is thread-safe and exactly-once by record id; queries in
  queries.py (cost by a dimension with a per-day trend, top requests, rates).
- `UsageMetrics(registry, label_cap)` (metrics.py): Prometheus counters and a
  latency histogram with bounded label values, fed by the store's listeners.
- `build_usage_app` / `start_usage_api` (api.py): the JSON API described by
  openapi.json, `/metrics`, and the web page in web/.
- `UsageService(options)` (service.py): all of it for one operator process;
  `UsageOptions` and its command-line flags in options.py.

See docs/usage.md.
"""

from sidelight_operator.usage.options import UsageOptions
from sidelight_operator.usage.service import UsageService
from sidelight_operator.usage.store import UsageStore

__all__ = ["UsageOptions", "UsageService", "UsageStore"]
