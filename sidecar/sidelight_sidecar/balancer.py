"""Load balancing over a backend's endpoints, with ejection of failing ones.

Three strategies: smooth weighted round robin (nginx's algorithm), least
outstanding requests (ties broken by weight, then by rotation), and
latency-aware (lowest EWMA of time to first byte, scaled by outstanding
requests). An endpoint that fails `consecutive_failures` times in a row is
ejected for a cool-down, then tried again; when every endpoint is ejected the
one whose cool-down ends first is used, so a backend never becomes unusable.

Endpoint statistics outlive configuration versions: a new snapshot that keeps
an endpoint URL keeps its counters (see `EndpointRegistry`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

EWMA_DECAY = 0.3  # weight of the newest latency sample
EWMA_INITIAL_S = 0.0  # untried endpoints look fast so they get tried
# A latency estimate not refreshed for a while fades (halves every ~1.4 s), so an
# endpoint that was slow once is tried again instead of being shunned forever.
EWMA_STALE_DECAY_S = 2.0


class Strategy(Enum):
    """How an endpoint is picked."""

    WEIGHTED_ROUND_ROBIN = "weighted-round-robin"
    LEAST_OUTSTANDING = "least-outstanding"
    LATENCY_EWMA = "latency-ewma"


@dataclass
class EndpointStats:
    """Live counters of one endpoint URL, shared by every config version."""

    url: str
    outstanding: int = 0
    ewma_s: float = EWMA_INITIAL_S
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    requests: int = 0
    sampled_at: float = 0.0


class EndpointRegistry:
    """Keeps `EndpointStats` by URL across configuration swaps."""

    def __init__(self) -> None:
        self._stats: dict[str, EndpointStats] = {}

    def get(self, url: str) -> EndpointStats:
        """Return the stats for `url`, creating them on first use."""
        stats = self._stats.get(url)
        if stats is None:
            stats = self._stats[url] = EndpointStats(url)
        return stats


@dataclass
class Ejection:
    """When an endpoint is taken out of rotation."""

    consecutive_failures: int = 5
    cooldown_s: float = 30.0


@dataclass
class _Slot:
    stats: EndpointStats
    weight: int
    current: int = 0  # smooth weighted round robin state


@dataclass
class Balancer:
    """Picks endpoints of one backend and learns from the outcomes."""

    strategy: Strategy
    slots: list[_Slot]
    ejection: Ejection = field(default_factory=Ejection)
    clock: Callable[[], float] = time.monotonic
    _rotation: int = 0

    @classmethod
    def build(
        cls,
        endpoints: Sequence[tuple[str, int]],
        strategy: Strategy,
        ejection: Ejection,
        registry: EndpointRegistry,
        clock: Callable[[], float] = time.monotonic,
    ) -> Balancer:
        """A balancer over `(url, weight)` pairs."""
        slots = [_Slot(registry.get(url), max(1, weight)) for url, weight in endpoints]
        return cls(strategy, slots, ejection, clock)

    def pick(self, exclude: frozenset[str] = frozenset()) -> EndpointStats:
        """Choose an endpoint, avoiding ejected ones and those in `exclude`."""
        now = self.clock()
        live = [
            s for s in self.slots if s.stats.ejected_until <= now and s.stats.url not in exclude
        ]
        if not live:
            live = [s for s in self.slots if s.stats.url not in exclude] or self.slots
            return min(live, key=lambda s: s.stats.ejected_until).stats
        if len(live) == 1:
            return live[0].stats
        if self.strategy is Strategy.WEIGHTED_ROUND_ROBIN:
            return self._smooth_wrr(live)
        self._rotation += 1
        n = len(live)
        rotated = [live[(i + self._rotation) % n] for i in range(n)]
        if self.strategy is Strategy.LEAST_OUTSTANDING:
            return min(rotated, key=lambda s: s.stats.outstanding / s.weight).stats
        return min(rotated, key=lambda s: self._latency_cost(s, now)).stats

    @staticmethod
    def _latency_cost(slot: _Slot, now: float) -> float:
        stats = slot.stats
        fade = math.exp(-(now - stats.sampled_at) / EWMA_STALE_DECAY_S)
        return stats.ewma_s * fade * (stats.outstanding + 1) / slot.weight

    @staticmethod
    def _smooth_wrr(live: list[_Slot]) -> EndpointStats:
        total = 0
        best = live[0]
        for slot in live:
            slot.current += slot.weight
            total += slot.weight
            if slot.current > best.current:
                best = slot
        best.current -= total
        return best.stats

    @staticmethod
    def started(stats: EndpointStats) -> None:
        """Count a request as outstanding on `stats`."""
        stats.outstanding += 1
        stats.requests += 1

    def finished(self, stats: EndpointStats, ok: bool, latency_s: float | None) -> None:
        """Record the outcome of a request started with `started`."""
        stats.outstanding -= 1
        if latency_s is not None:
            stats.sampled_at = self.clock()
            stats.ewma_s = (
                latency_s
                if stats.ewma_s == EWMA_INITIAL_S
                else EWMA_DECAY * latency_s + (1 - EWMA_DECAY) * stats.ewma_s
            )
        if ok:
            stats.consecutive_failures = 0
            return
        stats.consecutive_failures += 1
        if stats.consecutive_failures >= self.ejection.consecutive_failures:
            stats.ejected_until = self.clock() + self.ejection.cooldown_s
            stats.consecutive_failures = 0
