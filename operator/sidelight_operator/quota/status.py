"""An LLMQuota's status from its account in the ledger: usage, window, two conditions.

Pure: `build_quota_status(usage, soft_percent)` gives the fields and the
conditions that the status writer puts into the quota's status, after
Accepted and Programmed (`quota_status_source` finds them for a key):

- `usedTokens`, `usedCostUSD`: spent in the current window (settled usage
  the sidecars reported, not budget lent out);
- `percent`: the larger of the two in percent of its limit, rounded down;
- `used`: the same for people, for the printer column
  (`41,200/100,000 tokens`, `$12.40/$500.00`, or both);
- `windowStart`, `windowEnd`: the current window;
- `SoftLimitReached`: True once spending crossed the soft threshold in this
  window; `HardLimitReached`: True once it reached the limit or a sidecar
  refused (or downgraded) a call for lack of budget. Both go back to False
  when a new window starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sidelight_operator.compile import ResourceKey
from sidelight_operator.kube.conditions import Condition
from sidelight_operator.quota.ledger import HARD, NUSD_PER_USD, SOFT, Ledger, Usage
from sidelight_operator.quota.windows import iso
from sidelight_proto.v1 import snapshot_pb2

SOFT_LIMIT_REACHED = "SoftLimitReached"
HARD_LIMIT_REACHED = "HardLimitReached"


def build_quota_status(usage: Usage, soft_percent: float) -> tuple[dict[str, Any], list[Condition]]:
    """The status fields and conditions of a quota with `usage` in its current window."""
    fields: dict[str, Any] = {
        "used": describe_usage(usage),
        "usedTokens": usage.spent_tokens,
        "usedCostUSD": round(usage.spent_nusd / NUSD_PER_USD, 6),
        "percent": int(usage.percent),
        "windowStart": iso(usage.window.start_ms),
        "windowEnd": iso(usage.window.end_ms),
    }
    ends = iso(usage.window.end_ms)
    spent = f"{describe_usage(usage)} ({usage.percent:.1f}%) in the window ending {ends}"
    soft = (
        Condition(
            SOFT_LIMIT_REACHED,
            "True",
            "ThresholdCrossed",
            f"{spent}; soft threshold {soft_percent:g}%",
        )
        if SOFT in usage.notices
        else Condition(
            SOFT_LIMIT_REACHED,
            "False",
            "BelowThreshold",
            f"{spent}; soft threshold {soft_percent:g}%",
        )
    )
    if HARD in usage.notices:
        refused = f"; {usage.refused} call(s) refused or downgraded" if usage.refused else ""
        hard = Condition(HARD_LIMIT_REACHED, "True", "LimitReached", f"{spent}{refused}")
    else:
        hard = Condition(HARD_LIMIT_REACHED, "False", "WithinLimit", spent)
    return fields, [soft, hard]


def describe_usage(usage: Usage) -> str:
    """`41,200/100,000 tokens`, `$12.40/$500.00`, or both joined by a comma."""
    parts = []
    if usage.limit_tokens is not None:
        parts.append(f"{usage.spent_tokens:,}/{usage.limit_tokens:,} tokens")
    if usage.limit_nusd is not None:
        parts.append(
            f"${usage.spent_nusd / NUSD_PER_USD:,.2f}/${usage.limit_nusd / NUSD_PER_USD:,.2f}"
        )
    return ", ".join(parts)


def quota_status_source(
    ledger: Ledger,
) -> Callable[[ResourceKey, snapshot_pb2.Snapshot], tuple[dict[str, Any], list[Condition]] | None]:
    """The status writer's `extra` for LLMQuotas: their accounts in `ledger`."""

    def extra(
        key: ResourceKey, snapshot: snapshot_pb2.Snapshot
    ) -> tuple[dict[str, Any], list[Condition]] | None:
        if key[0] != "LLMQuota":
            return None
        for quota in snapshot.quotas:
            if (quota.source.namespace, quota.source.name) == key[1:]:
                return build_quota_status(ledger.usage(quota), quota.soft_threshold_percent)
        return None

    return extra
