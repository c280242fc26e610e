"""Prometheus metrics of quotas, for dashboards and the chart's alerting rules.

Read from the ledger at each scrape (a collector, so nothing is updated on
the request path), for every quota lent from in its current window, labelled
`namespace` and `quota` (at most one series per LLMQuota):

- `sidelight_quota_used_tokens`, `sidelight_quota_used_cost_usd`: spent in
  the window; `sidelight_quota_limit_tokens`, `sidelight_quota_limit_cost_usd`;
- `sidelight_quota_used_ratio`: the larger share of a limit spent (0 to 1);
- `sidelight_quota_soft_limit_reached`, `sidelight_quota_hard_limit_reached`:
  1 once the threshold was crossed in the window, else 0 (the alerts' input);
- `sidelight_quota_outstanding_tokens`: lent out and not spent yet.

And a counter, `sidelight_quota_threshold_crossings_total{namespace, quota,
threshold}`, counted once per window and threshold.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sidelight_operator.quota.ledger import HARD, NUSD_PER_USD, SOFT, Crossing, Ledger, Usage

LABELS = ("namespace", "quota")


class QuotaCollector(Collector):
    """The ledger's current accounts as gauges."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per quota and gauge."""
        gauges = {
            "used_tokens": ("Tokens spent in the current window.", _spent_tokens),
            "used_cost_usd": ("Dollars spent in the current window.", _spent_usd),
            "limit_tokens": ("The token limit (absent: none).", _limit_tokens),
            "limit_cost_usd": ("The cost limit in dollars (absent: none).", _limit_usd),
            "used_ratio": ("The larger share of a limit spent, 0 to 1.", _ratio),
            "soft_limit_reached": ("1 once the soft threshold was crossed.", _soft),
            "hard_limit_reached": ("1 once the hard limit was reached.", _hard),
            "outstanding_tokens": ("Tokens lent to sidecars and not spent.", _outstanding),
        }
        usages = self.ledger.current()
        for name, (help_text, value) in gauges.items():
            family = GaugeMetricFamily(f"sidelight_quota_{name}", help_text, labels=LABELS)
            for usage in usages:
                sample = value(usage)
                if sample is not None:
                    family.add_metric(usage.quota.split("/", 1), sample)
            yield family


class QuotaMetrics:
    """The quota collector and the crossings counter, in `registry`."""

    def __init__(self, registry: CollectorRegistry, ledger: Ledger) -> None:
        registry.register(QuotaCollector(ledger))
        self.crossings = Counter(
            "sidelight_quota_threshold_crossings",
            "Thresholds crossed, once per quota, window and threshold (soft or hard).",
            (*LABELS, "threshold"),
            registry=registry,
        )

    def crossed(self, crossing: Crossing) -> None:
        """Count a crossing (a ledger listener)."""
        namespace, name = crossing.usage.quota.split("/", 1)
        self.crossings.labels(namespace, name, crossing.threshold).inc()


def _spent_tokens(usage: Usage) -> float:
    return float(usage.spent_tokens)


def _spent_usd(usage: Usage) -> float:
    return usage.spent_nusd / NUSD_PER_USD


def _limit_tokens(usage: Usage) -> float | None:
    return None if usage.limit_tokens is None else float(usage.limit_tokens)


def _limit_usd(usage: Usage) -> float | None:
    return None if usage.limit_nusd is None else usage.limit_nusd / NUSD_PER_USD


def _ratio(usage: Usage) -> float:
    return usage.percent / 100


def _soft(usage: Usage) -> float:
    return float(SOFT in usage.notices)


def _hard(usage: Usage) -> float:
    return float(HARD in usage.notices)


def _outstanding(usage: Usage) -> float | None:
    if usage.limit_tokens is None:
        return None
    return float(max(0, usage.charged_tokens - usage.spent_tokens))
