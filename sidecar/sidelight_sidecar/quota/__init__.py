"""Quotas in the sidecar: leases of the operator's budget, reserved from on the request path.

- `build_quota_rules(quotas)`: a snapshot's quotas in runtime shape (rules.py).
- `QuotaGate`: `reserve`/`acquire` before the provider call (local, no
  network), `settle` after the answer; `asks`/`apply` are the keeper's side
  (gate.py, with the leases in lease.py).
- `LeaseKeeper`: the Leases stream to the operator, which refills and
  reports off the request path (keeper.py).

See docs/quotas.md.
"""

from sidelight_sidecar.quota.gate import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    MIN_OUTPUT_TOKENS,
    QuotaGate,
)
from sidelight_sidecar.quota.rules import (
    FREE,
    Downgrade,
    QuotaFacts,
    QuotaRule,
    Refusal,
    Reservation,
    build_quota_rules,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT_TOKENS",
    "FREE",
    "MIN_OUTPUT_TOKENS",
    "Downgrade",
    "QuotaFacts",
    "QuotaGate",
    "QuotaRule",
    "Refusal",
    "Reservation",
    "build_quota_rules",
]
