"""The ledger: grants never pass the limit, leases charge what they may spend, windows roll."""

from __future__ import annotations

import random
from pathlib import Path

from sidelight_operator.quota import HARD, SOFT, Crossing, Ledger, LedgerStore, Window, window_at
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2

T0 = 1_700_000_000.0  # a Tuesday, 22:13:20 UTC


class Clock:
    """A clock the test moves."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def quota(
    tokens: int | None = 1000,
    cost: float | None = None,
    rolling_s: int = 60,
    soft: float = 80,
    name: str = "q",
) -> snapshot_pb2.Quota:
    q = snapshot_pb2.Quota(
        source=snapshot_pb2.ResourceRef(kind="LLMQuota", namespace="shop", name=name),
        scope=snapshot_pb2.QuotaScope(namespace="shop"),
        window=snapshot_pb2.QuotaWindow(rolling_seconds=rolling_s),
        soft_threshold_percent=soft,
        block=True,
    )
    if tokens is not None:
        q.limit_tokens = tokens
    if cost is not None:
        q.limit_cost_usd = cost
    return q


def ask(lease: str, **counters: int | bool) -> control_plane_pb2.LeaseAsk:
    return control_plane_pb2.LeaseAsk(quota="shop/q", lease_id=lease, **counters)  # type: ignore[arg-type]


def test_a_lone_lease_gets_what_it_asks_up_to_the_limit() -> None:
    ledger = Ledger(clock=Clock())
    q = quota(tokens=1000)
    grant = ledger.exchange("pod-a", q, ask("a1", want_tokens=300))
    assert (grant.granted_tokens, grant.available_tokens, grant.used_tokens) == (300, 700, 0)
    grant = ledger.exchange("pod-a", q, ask("a1", want_tokens=5000, spent_tokens=100))
    assert (grant.granted_tokens, grant.available_tokens, grant.used_tokens) == (1000, 0, 100)
    assert not grant.HasField("available_nusd")  # no cost limit
    assert grant.window_start_unix_ms == 1_699_999_980_000
    assert grant.window_end_unix_ms == 1_700_000_040_000
    assert grant.ttl_ms == 30_000


def test_the_ttl_never_passes_the_window_end() -> None:
    clock = Clock(T0 + 30)  # 10 s before the 60 s window ends
    grant = Ledger(clock=clock).exchange("p", quota(), ask("a", want_tokens=1))
    assert grant.ttl_ms == 10_000


def test_active_leases_share_what_is_left() -> None:
    clock = Clock()
    ledger = Ledger(clock=clock, ttl_s=10)
    q = quota(tokens=900)
    assert ledger.exchange("a", q, ask("a", want_tokens=100)).granted_tokens == 100
    # 800 left, two active leases: at most 400 each.
    assert ledger.exchange("b", q, ask("b", want_tokens=1000)).granted_tokens == 400
    assert ledger.exchange("c", q, ask("c", want_tokens=1000)).granted_tokens == 133
    # A lease not heard of for two TTLs no longer counts as active.
    clock.now += 25
    grant = ledger.exchange("c", q, ask("c", want_tokens=1000))
    assert (grant.granted_tokens, grant.available_tokens) == (133 + 267, 0)


def test_returned_and_closed_leases_give_budget_back() -> None:
    ledger = Ledger(clock=Clock())
    q = quota(tokens=1000)
    ledger.exchange("a", q, ask("a", want_tokens=1000))
    assert ledger.exchange("b", q, ask("b", want_tokens=10)).granted_tokens == 0
    # a spent 200, holds 100 for a call in flight, and gives 500 back.
    grant = ledger.exchange(
        "a", q, ask("a", spent_tokens=200, held_tokens=100, returned_tokens=500)
    )
    assert grant.available_tokens == 500
    # Closed: charged what it spent, the rest is free again.
    grant = ledger.exchange("a", q, ask("a", spent_tokens=260, returned_tokens=500, close=True))
    assert (grant.available_tokens, grant.used_tokens, grant.ttl_ms) == (740, 260, 0)
    assert ledger.exchange("a", q, ask("a", want_tokens=10)).granted_tokens == 1000  # no more
    assert ledger.exchange("b", q, ask("b", want_tokens=10_000)).granted_tokens == 740


def test_counters_only_grow_so_repeated_or_late_reports_change_nothing() -> None:
    ledger = Ledger(clock=Clock())
    q = quota(tokens=1000)
    ledger.exchange("a", q, ask("a", want_tokens=500, spent_tokens=0))
    ledger.exchange("a", q, ask("a", spent_tokens=300, returned_tokens=100))
    stale = ledger.exchange("a", q, ask("a", spent_tokens=200, returned_tokens=50))
    assert (stale.used_tokens, stale.available_tokens) == (300, 600)
    usage = ledger.usage(q)
    assert (usage.spent_tokens, usage.charged_tokens) == (300, 400)


def test_spending_past_the_grant_is_charged() -> None:
    ledger = Ledger(clock=Clock())
    q = quota(tokens=1000)
    ledger.exchange("a", q, ask("a", want_tokens=100))
    grant = ledger.exchange("a", q, ask("a", spent_tokens=130))  # counted 100, billed 130
    assert (grant.used_tokens, grant.available_tokens) == (130, 870)
    assert grant.granted_tokens == 130  # the overspend is granted (it was charged): free is 0


def test_a_lease_belongs_to_its_pod_and_quota() -> None:
    ledger = Ledger(clock=Clock())
    ledger.exchange("a", quota(name="q"), ask("x", want_tokens=100))
    other = ledger.exchange("a", quota(name="r"), ask("x", want_tokens=100))
    assert other.error == "the lease belongs to another quota"
    # The same id from another pod is another lease.
    assert ledger.exchange("b", quota(name="q"), ask("x", want_tokens=100)).granted_tokens == 100
    assert ledger.exchange("a", quota(), ask("", want_tokens=1)).error


def test_cost_is_lent_in_nano_dollars() -> None:
    ledger = Ledger(clock=Clock())
    q = quota(tokens=None, cost=0.5)
    grant = ledger.exchange("a", q, ask("a", want_nusd=200_000_000, want_tokens=99))
    assert (grant.granted_nusd, grant.granted_tokens) == (200_000_000, 0)
    assert grant.available_nusd == 300_000_000
    assert not grant.HasField("available_tokens")


def test_the_sum_of_what_sidecars_may_spend_never_passes_the_limit() -> None:
    """Random asks, spending and returns from 6 pods: charges stay within the limit."""
    rng = random.Random(7)
    ledger = Ledger(clock=Clock())
    q = quota(tokens=10_000, cost=1.0)
    state = {pod: {"spent_tokens": 0, "spent_nusd": 0, "returned_tokens": 0} for pod in "abcdef"}
    granted = dict.fromkeys(state, 0)
    for _ in range(2000):
        pod = rng.choice("abcdef")
        counters = state[pod]
        free = granted[pod] - counters["returned_tokens"] - counters["spent_tokens"]
        if free > 0 and rng.random() < 0.5:
            spend = rng.randint(0, free)
            counters["spent_tokens"] += spend
            counters["spent_nusd"] += spend * 10
        elif free > 0 and rng.random() < 0.2:
            counters["returned_tokens"] += rng.randint(0, free)
        grant = ledger.exchange(
            pod,
            q,
            ask(pod, want_tokens=rng.randint(0, 3000), want_nusd=rng.randint(0, 10**8), **counters),
        )
        granted[pod] = grant.granted_tokens
        usage = ledger.usage(q)
        assert usage.charged_tokens <= 10_000
        assert usage.charged_nusd <= 1_000_000_000
        assert sum(c["spent_tokens"] for c in state.values()) <= 10_000
    assert ledger.usage(q).spent_tokens > 9_000  # the budget was used, not starved


def test_a_new_window_has_a_fresh_budget_and_old_leases_get_nothing_more() -> None:
    clock = Clock()
    ledger = Ledger(clock=clock)
    q = quota(tokens=100, rolling_s=60)
    first = ledger.exchange("a", q, ask("a", want_tokens=100, spent_tokens=0))
    assert first.granted_tokens == 100
    clock.now += 60
    old = ledger.exchange("a", q, ask("a", want_tokens=100, spent_tokens=90))
    assert (old.granted_tokens, old.ttl_ms) == (100, 0)
    assert old.window_end_unix_ms == first.window_end_unix_ms
    fresh = ledger.exchange("a", q, ask("a2", want_tokens=100))
    assert fresh.granted_tokens == 100
    assert fresh.window_start_unix_ms == first.window_end_unix_ms
    assert ledger.usage(q).spent_tokens == 0


def test_thresholds_are_announced_once_per_window() -> None:
    clock = Clock()
    ledger = Ledger(clock=clock)
    heard: list[Crossing] = []
    ledger.listeners.append(heard.append)
    q = quota(tokens=1000, soft=80, rolling_s=60)
    ledger.exchange("a", q, ask("a", want_tokens=1000, spent_tokens=700))
    assert heard == []
    ledger.exchange("a", q, ask("a", spent_tokens=800))
    ledger.exchange("a", q, ask("a", spent_tokens=900))
    assert [(c.threshold, c.usage.spent_tokens, c.usage.percent) for c in heard] == [
        (SOFT, 800, 80.0)
    ]
    ledger.exchange("a", q, ask("a", spent_tokens=900, refused=1))
    assert [c.threshold for c in heard] == [SOFT, HARD]
    ledger.exchange("a", q, ask("a", spent_tokens=1000, refused=5))
    assert len(heard) == 2
    clock.now += 60
    ledger.exchange("a", q, ask("b", want_tokens=1000, spent_tokens=850))
    assert [c.threshold for c in heard] == [SOFT, HARD, SOFT]


def test_the_store_brings_leases_and_notices_back(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    clock = Clock()
    q = quota(tokens=1000)
    ledger = Ledger(LedgerStore(path), clock=clock)
    ledger.exchange("a", q, ask("a", want_tokens=600, spent_tokens=0))
    ledger.exchange("a", q, ask("a", spent_tokens=850))
    ledger.store.close()
    again = Ledger(LedgerStore(path), clock=clock)
    heard: list[Crossing] = []
    again.listeners.append(heard.append)
    usage = again.usage(q)
    assert (usage.spent_tokens, usage.charged_tokens, usage.notices) == (
        850,
        850,
        frozenset({SOFT}),
    )
    # The lease spent 250 more than it was granted (charged already): a grant covers it first.
    grant = again.exchange("a", q, ask("a", spent_tokens=850, want_tokens=1000))
    assert (grant.granted_tokens, grant.available_tokens) == (250 + 600 + 150, 0)
    assert heard == []  # the soft threshold was announced before the restart
    again.prune(0)
    assert again.usage(q).spent_tokens == 850  # the current window is kept
    clock.now += 120
    again.prune(0)
    assert LedgerStore(path).load() == ([], [])


def test_calendar_windows_follow_the_time_zone() -> None:
    paris = snapshot_pb2.QuotaWindow(calendar="day", time_zone="Europe/Paris")
    # 2024-03-31 is 23 hours long in Paris (summer time starts).
    moment = 1_711_875_600_000  # 2024-03-31T09:00:00Z
    assert window_at(paris, moment) == Window(1_711_839_600_000, 1_711_922_400_000)
    month = snapshot_pb2.QuotaWindow(calendar="month", time_zone="UTC")
    assert window_at(month, moment) == Window(1_709_251_200_000, 1_711_929_600_000)
    december = window_at(month, 1_734_000_000_000)  # 2024-12-12
    assert december == Window(1_733_011_200_000, 1_735_689_600_000)  # to 2025-01-01
    hour = snapshot_pb2.QuotaWindow(rolling_seconds=3600)
    assert window_at(hour, moment + 1234) == Window(moment, moment + 3_600_000)
