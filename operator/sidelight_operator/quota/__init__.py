"""Quota budgets: the operator holds them and lends them to sidecars as leases.

- `Ledger`: one account per quota and window; `exchange(pod, quota, ask)`
  answers a sidecar's `LeaseAsk` with a `LeaseGrant` and never lends more
  than `limit - used`; `usage(quota)` is the account now; `listeners` hear
  each threshold crossed, once per window (ledger.py).
- `LedgerStore`: the ledger's SQLite file, so a restart forgets nothing (store.py).
- `QuotaLending` and `serve_leases`: the Leases stream of one authenticated
  pod, answered from the ledger for the quotas in its scope (lending.py).
- `window_at(window, now_ms)`: the calendar or rolling window holding a moment (windows.py).

See docs/quotas.md.
"""

from sidelight_operator.quota.ledger import (
    HARD,
    SOFT,
    Crossing,
    Ledger,
    Usage,
    limits_of,
    quota_key,
)
from sidelight_operator.quota.lending import QuotaLending, in_scope, serve_leases
from sidelight_operator.quota.store import LeaseRecord, LedgerStore
from sidelight_operator.quota.windows import Window, iso, window_at

__all__ = [
    "HARD",
    "SOFT",
    "Crossing",
    "LeaseRecord",
    "Ledger",
    "LedgerStore",
    "QuotaLending",
    "Usage",
    "Window",
    "in_scope",
    "iso",
    "limits_of",
    "quota_key",
    "serve_leases",
    "window_at",
]
