"""Load-balancing strategies distribute as specified and eject failing endpoints."""

from __future__ import annotations

from collections import Counter

from sidelight_sidecar.balancer import Balancer, Ejection, EndpointRegistry, Strategy


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(strategy: Strategy, weights: dict[str, int], clock: Clock | None = None) -> Balancer:
    return Balancer.build(
        list(weights.items()),
        strategy,
        Ejection(consecutive_failures=3, cooldown_s=10),
        EndpointRegistry(),
        clock or Clock(),
    )


def test_weighted_round_robin_follows_weights_exactly() -> None:
    balancer = make(Strategy.WEIGHTED_ROUND_ROBIN, {"a": 3, "b": 1})
    picks = [balancer.pick().url for _ in range(8)]
    assert Counter(picks) == {"a": 6, "b": 2}
    assert picks[:4].count("b") == 1  # smooth: b is not starved for a whole cycle


def test_least_outstanding_prefers_the_idle_endpoint() -> None:
    balancer = make(Strategy.LEAST_OUTSTANDING, {"a": 1, "b": 1})
    busy = balancer.pick()
    balancer.started(busy)
    for _ in range(5):
        assert balancer.pick().url != busy.url
    balancer.finished(busy, True, 0.01)
    assert {balancer.pick().url for _ in range(4)} == {"a", "b"}


def test_latency_ewma_prefers_the_faster_endpoint() -> None:
    balancer = make(Strategy.LATENCY_EWMA, {"slow": 1, "fast": 1})
    for url, latency in (("slow", 0.5), ("fast", 0.05)):
        stats = next(s.stats for s in balancer.slots if s.stats.url == url)
        balancer.started(stats)
        balancer.finished(stats, True, latency)
    assert Counter(balancer.pick().url for _ in range(20)) == {"fast": 20}


def test_failing_endpoint_is_ejected_then_retried_after_cooldown() -> None:
    clock = Clock()
    balancer = make(Strategy.LEAST_OUTSTANDING, {"bad": 1, "good": 1}, clock)
    bad = next(s.stats for s in balancer.slots if s.stats.url == "bad")
    for _ in range(3):
        balancer.started(bad)
        balancer.finished(bad, False, None)
    assert {balancer.pick().url for _ in range(10)} == {"good"}
    clock.now += 10.5
    assert "bad" in {balancer.pick().url for _ in range(10)}


def test_all_ejected_still_serves_the_one_back_soonest() -> None:
    clock = Clock()
    balancer = make(Strategy.WEIGHTED_ROUND_ROBIN, {"a": 1, "b": 1}, clock)
    for slot in balancer.slots:
        for _ in range(3):
            balancer.started(slot.stats)
            balancer.finished(slot.stats, False, None)
        clock.now += 1
    assert balancer.pick().url == "a"


def test_registry_keeps_counters_across_versions() -> None:
    registry = EndpointRegistry()
    first = Balancer.build([("u", 1)], Strategy.LEAST_OUTSTANDING, Ejection(), registry)
    stats = first.pick()
    first.started(stats)
    second = Balancer.build([("u", 1)], Strategy.LEAST_OUTSTANDING, Ejection(), registry)
    assert second.pick().outstanding == 1
