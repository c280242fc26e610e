"""The quota gate against the operator's real ledger, in process, with clocks the test moves."""

from __future__ import annotations

import asyncio
import random

from sidelight_operator.quota import Ledger
from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.quota import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    FREE,
    Downgrade,
    QuotaFacts,
    QuotaGate,
    Refusal,
    Reservation,
    build_quota_rules,
)
from sidelight_sidecar.quota.rules import QuotaRule

IDENTITY = Identity("shop", "chat-1", "chat", "payments", "chat", "prod")
T0 = 1_700_000_000.0


class Clock:
    """Monotonic and wall clocks that move together, by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def mono(self) -> float:
        return self.now

    def wall(self) -> float:
        return T0 + self.now


def quota(
    name: str = "q",
    tokens: int | None = 10_000,
    cost: float | None = None,
    rolling_s: int = 3600,
    **scope: str,
) -> snapshot_pb2.Quota:
    q = snapshot_pb2.Quota(
        source=snapshot_pb2.ResourceRef(kind="LLMQuota", namespace="shop", name=name),
        scope=snapshot_pb2.QuotaScope(namespace="shop", **scope),
        window=snapshot_pb2.QuotaWindow(rolling_seconds=rolling_s),
        soft_threshold_percent=80,
        block=True,
    )
    if tokens is not None:
        q.limit_tokens = tokens
    if cost is not None:
        q.limit_cost_usd = cost
    return q


class Rig:
    """Gates of several pods lent to by one ledger, on one clock."""

    def __init__(self, *quotas: snapshot_pb2.Quota, pods: int = 1) -> None:
        self.clock = Clock()
        self.ledger = Ledger(clock=self.clock.wall, ttl_s=30)
        self.quotas = {f"shop/{q.source.name}": q for q in quotas}
        self.rules = build_quota_rules(quotas)
        self.gates = [
            QuotaGate(IDENTITY, clock=self.clock.mono, wall=self.clock.wall) for _ in range(pods)
        ]
        for gate in self.gates:
            gate.configure(self.rules)

    def pump(self, index: int = 0) -> None:
        """One exchange of gate `index` with the ledger, as the keeper does it."""
        gate = self.gates[index]
        asks = gate.asks()
        grants = [self.ledger.exchange(f"pod-{index}", self.quotas[a.quota], a) for a in asks]
        gate.apply(asks, grants, self.clock.mono())
        gate.connected = True


def facts(input_tokens: int = 100, max_output: int | None = 200, **more: object) -> QuotaFacts:
    return QuotaFacts("gpt-4o", input_tokens, max_output, **more)  # type: ignore[arg-type]


def test_no_quota_applies_and_nothing_is_held() -> None:
    rig = Rig(quota(team="search"), quota("m", model="gpt-4"))
    assert rig.gates[0].reserve(rig.rules, facts()) is FREE
    # Not the other team's quota; the model's, ahead of a call for that model.
    assert [ask.quota for ask in rig.gates[0].asks()] == ["shop/m"]


def test_without_a_lease_a_request_is_refused_as_unavailable() -> None:
    rig = Rig(quota())
    outcome = rig.gates[0].reserve(rig.rules, facts())
    assert isinstance(outcome, Refusal)
    assert outcome.retry_after_s == 5
    assert "has not lent any" in outcome.message


def test_a_reservation_holds_input_and_output_until_settled() -> None:
    rig = Rig(quota(tokens=10_000))
    rig.pump()
    gate = rig.gates[0]
    outcome = gate.reserve(rig.rules, facts(100, 200))
    assert isinstance(outcome, Reservation)
    assert (outcome.max_output_tokens, outcome.clamped, outcome.quotas) == (200, False, ("shop/q",))
    [hold] = outcome.holds
    assert (hold.tokens, hold.lease.held_tokens) == (300, 300)
    unset = gate.reserve(rig.rules, facts(100, None))
    assert isinstance(unset, Reservation)
    assert (unset.max_output_tokens, unset.clamped) == (DEFAULT_MAX_OUTPUT_TOKENS, True)
    free_before = hold.lease.free_tokens
    assert gate.settle(outcome, 100, 50, 0) == []
    assert (hold.lease.spent_tokens, hold.lease.free_tokens) == (150, free_before + 150)


def test_a_short_lease_clamps_the_output_then_refuses_naming_the_reset() -> None:
    rig = Rig(quota(tokens=1_000))
    rig.pump()
    gate = rig.gates[0]
    first = gate.reserve(rig.rules, facts(100, 700))
    assert isinstance(first, Reservation)
    clamped = gate.reserve(rig.rules, facts(50, 700))
    assert isinstance(clamped, Reservation)
    assert (clamped.max_output_tokens, clamped.clamped) == (1000 - 800 - 50, True)
    refused = gate.reserve(rig.rules, facts(10, 700))
    assert isinstance(refused, Refusal)
    assert refused.quota == "shop/q"
    assert "Quota 'shop/q' exceeded: 0 of 1,000 tokens used in this window" in refused.message
    assert "resets at 2023-11-14T23:00:00Z" in refused.message
    assert refused.retry_after_s == 1_700_002_800 - int(T0 + 100)
    rig.pump()
    assert rig.ledger.usage(rig.quotas["shop/q"]).refused == 1


def test_a_spent_downgrade_quota_sends_the_request_elsewhere() -> None:
    q = quota(tokens=300)
    q.downgrade_to = "gpt-4o-mini"
    rig = Rig(q)
    rig.pump()
    gate = rig.gates[0]
    assert isinstance(gate.reserve(rig.rules, facts(100, 200)), Reservation)
    outcome = gate.reserve(rig.rules, facts(100, 200))
    assert outcome == Downgrade("shop/q", "gpt-4o-mini")
    assert gate.reserve(rig.rules, facts(100, 200), skip=frozenset({"shop/q"})) is FREE


def test_cost_limits_reserve_at_the_dearest_price() -> None:
    rig = Rig(quota(tokens=None, cost=0.01))  # 10,000,000 nano-dollars
    rig.pump()
    gate = rig.gates[0]
    priced = facts(1000, 1000, input_nusd_per_token=2500.0, output_nusd_per_token=10_000.0)
    first = gate.reserve(rig.rules, priced)
    assert isinstance(first, Reservation)
    # 12.5M would be needed of a 10M limit: the lease got all 10M; output is clamped to fit.
    assert first.max_output_tokens == (10_000_000 - 2_500_000) // 10_000
    assert [(h.tokens, h.nusd) for h in first.holds] == [(0, 10_000_000)]


async def test_acquire_waits_for_a_refill_when_the_operator_has_more() -> None:
    rig = Rig(quota(tokens=100_000))
    rig.pump(0)
    gate = rig.gates[0]
    lease = gate.slots["shop/q"].lease
    assert lease is not None
    big = facts(1000, 60_000)
    assert lease.free_tokens < 61_000
    task = asyncio.create_task(gate.acquire(rig.rules, big))
    await asyncio.sleep(0)
    assert not task.done()  # waiting for the keeper
    rig.pump(0)
    outcome = await task
    assert isinstance(outcome, Reservation)
    assert (outcome.max_output_tokens, outcome.clamped) == (60_000, False)


async def test_acquire_does_not_wait_when_nothing_is_left_to_lend() -> None:
    rig = Rig(quota(tokens=1_000))
    rig.pump()
    gate = rig.gates[0]
    outcome = await asyncio.wait_for(gate.acquire(rig.rules, facts(100, 5_000)), 0.5)
    assert isinstance(outcome, Reservation)
    assert outcome.max_output_tokens == 900


def test_a_lease_ends_with_its_window_and_the_next_one_is_fresh() -> None:
    rig = Rig(quota(tokens=1_000, rolling_s=60))
    rig.pump()
    gate = rig.gates[0]
    held = gate.reserve(rig.rules, facts(100, 800))
    assert isinstance(held, Reservation)
    old = held.holds[0].lease
    rig.clock.now += 60  # the window ended
    assert isinstance(gate.reserve(rig.rules, facts(100, 800)), Refusal)
    rig.pump()  # the old lease drains (still held), a new one opens
    fresh = gate.reserve(rig.rules, facts(100, 800))
    assert isinstance(fresh, Reservation)
    assert fresh.holds[0].lease is not old
    gate.settle(held, 100, 700, 0)
    rig.pump()
    assert gate.slots["shop/q"].draining == []  # closed
    usage = rig.ledger.usage(rig.quotas["shop/q"])
    assert (usage.spent_tokens, usage.charged_tokens) == (0, 1_000)


def test_the_soft_threshold_is_seen_on_the_request_that_crosses_it() -> None:
    rig = Rig(quota(tokens=1_000))
    rig.pump()
    gate = rig.gates[0]
    crossings = []
    for _ in range(5):
        held = gate.reserve(rig.rules, facts(100, 100))
        assert isinstance(held, Reservation)
        crossings.append(gate.settle(held, 100, 100, 0))
    assert crossings == [[], [], [], ["shop/q"], []]


def test_closing_returns_what_was_not_spent() -> None:
    rig = Rig(quota(tokens=1_000), pods=2)
    rig.pump(0)
    gate = rig.gates[0]
    held = gate.reserve(rig.rules, facts(100, 100))
    assert isinstance(held, Reservation)
    gate.close_all()
    rig.pump(0)
    assert gate.open_leases == 1  # held by the request in flight
    gate.settle(held, 100, 20, 0)
    rig.pump(0)
    assert gate.open_leases == 0
    usage = rig.ledger.usage(rig.quotas["shop/q"])
    assert (usage.spent_tokens, usage.charged_tokens, usage.open_leases) == (120, 120, 0)


def test_many_requests_on_three_sidecars_never_spend_past_the_limit() -> None:
    """Random reservations, answers and refills: what was billed never passes the limit."""
    rng = random.Random(11)
    rig = Rig(quota(tokens=100_000), pods=3)
    billed = 0
    in_flight: list[tuple[int, Reservation, int]] = []
    refusals = 0
    for step in range(6000):
        pod = rng.randrange(3)
        if step % 7 == 0:
            rig.pump(pod)
        if in_flight and rng.random() < 0.5:
            owner, held, input_tokens = in_flight.pop(rng.randrange(len(in_flight)))
            limit = held.max_output_tokens or 0
            output = rng.randint(0, limit)
            billed += input_tokens + output
            rig.gates[owner].settle(held, input_tokens, output, 0)
            continue
        input_tokens = rng.randint(10, 500)
        outcome = rig.gates[pod].reserve(rig.rules, facts(input_tokens, rng.choice([None, 300])))
        if isinstance(outcome, Reservation):
            in_flight.append((pod, outcome, input_tokens))
        else:
            refusals += 1
    assert billed <= 100_000
    assert billed > 90_000
    assert refusals > 0


def test_rules_follow_the_snapshot() -> None:
    q = quota(tokens=5, cost=1.5, model="gpt-4o", team="payments")
    q.downgrade_to = "mini"
    assert build_quota_rules([q]) == (
        QuotaRule("shop/q", 5, 1_500_000_000, 80.0, "mini", team="payments", model="gpt-4o"),
    )
