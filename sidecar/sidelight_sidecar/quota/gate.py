"""The quota check on the request path: reserve from local leases, settle after the answer.

`QuotaGate.reserve(rules, facts)` is synchronous and local (no network):
for every quota that applies to the request it holds, on the quota's lease,
the counted input tokens plus the output the request may produce (its own
limit, or `DEFAULT_MAX_OUTPUT_TOKENS` when it sets none), at the dearest price
among the backends it may reach. When a lease cannot cover that, the output
limit is lowered to what it can cover (`Reservation.clamped`, the proxy
rewrites the request's max_tokens); below `MIN_OUTPUT_TOKENS` (or its own
smaller limit) the request is refused, or downgraded for a quota that says
so. `acquire` is the same with one wait: when the operator may still lend
more, it asks for it (the `LeaseKeeper`, off the request path, sends the
ask) and waits up to `REFILL_WAIT_S` before deciding.

`settle(reservation, input, output, cost)` releases what was held and
charges the real usage, which may exceed what was held when the provider
counted more input tokens than the sidecar (the operator charges that too).
It returns the quotas whose soft threshold this request crossed, as far as
this sidecar can tell (the operator's view, which decides notifications,
follows within a report interval).

The gate is one per sidecar and outlives configuration versions: the rules
come with each request (from its version) and leases are kept by quota.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence

from sidelight_proto.v1 import control_plane_pb2
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.quota.lease import LocalLease, Slot
from sidelight_sidecar.quota.rules import (
    FREE,
    Downgrade,
    Hold,
    QuotaFacts,
    QuotaRule,
    Refusal,
    Reservation,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT_TOKENS = 4096
MIN_OUTPUT_TOKENS = 16
REFILL_WAIT_S = 2.0
UNAVAILABLE_RETRY_S = 5
_UNLIMITED = 1 << 62

Outcome = Reservation | Refusal | Downgrade


class _Short(Exception):
    """Some lease is short and the operator may lend more: wait for it, then decide."""

    def __init__(self, slots: list[Slot]) -> None:
        super().__init__()
        self.slots = slots


class QuotaGate:
    """Local leases per quota: reserve before the provider call, settle after."""

    def __init__(
        self,
        identity: Identity,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.clock = clock
        self.wall = wall
        self.slots: dict[str, Slot] = {}
        self.connected = False  # the keeper has a working stream to the operator
        self.wake = asyncio.Event()  # the keeper sends asks when set

    def configure(self, rules: Sequence[QuotaRule]) -> None:
        """The quotas of a new configuration version: lease ahead for those that apply."""
        keys = set()
        for rule in rules:
            if rule.applies(self.identity, rule.model):
                slot = self._slot(rule)
                slot.rule, slot.error = rule, ""
                keys.add(rule.key)
        for key, slot in self.slots.items():
            slot.rule = slot.rule if key in keys else _retired(slot.rule)
        self.wake.set()

    def reserve(
        self, rules: Sequence[QuotaRule], facts: QuotaFacts, skip: frozenset[str] = frozenset()
    ) -> Outcome:
        """Hold budget for a request on every lease that applies, or say why not. Local only."""
        return self._reserve(rules, facts, skip, may_wait=False)

    async def acquire(
        self, rules: Sequence[QuotaRule], facts: QuotaFacts, skip: frozenset[str] = frozenset()
    ) -> Outcome:
        """`reserve`, after waiting once for a grant when a lease is short and may grow."""
        try:
            return self._reserve(rules, facts, skip, may_wait=True)
        except _Short as short:
            waits = [asyncio.ensure_future(slot.changed.wait()) for slot in short.slots]
            self.wake.set()
            try:
                await asyncio.wait(waits, timeout=REFILL_WAIT_S, return_when=asyncio.ALL_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            return self._reserve(rules, facts, skip, may_wait=False)

    def settle(
        self, reservation: Reservation, input_tokens: int, output_tokens: int, cost_nusd: int
    ) -> list[str]:
        """Release the holds, charge the real usage; the quotas whose soft threshold it crossed."""
        crossed = []
        for hold in reservation.holds:
            lease = hold.lease
            slot = self.slots.get(lease.quota)
            before = _local_percent(slot, lease) if slot is not None else 0.0
            lease.held_tokens -= hold.tokens
            lease.held_nusd -= hold.nusd
            lease.spent_tokens += input_tokens + output_tokens
            lease.spent_nusd += cost_nusd
            if slot is None:
                continue
            after = _local_percent(slot, lease)
            if before < slot.rule.soft_percent <= after:
                crossed.append(lease.quota)
                self.wake.set()  # tell the operator now
        return crossed

    def asks(self) -> list[control_plane_pb2.LeaseAsk]:
        """What to send the operator now; the keeper calls it and sends the result."""
        now = self.clock()
        asks = []
        for slot in self.slots.values():
            asks.extend(slot.asks(now, active=slot.rule.key != ""))
        return asks

    def apply(
        self,
        asks: Sequence[control_plane_pb2.LeaseAsk],
        grants: Sequence[control_plane_pb2.LeaseGrant],
        sent_at: float,
    ) -> None:
        """Take the operator's answers to `asks`, sent at `sent_at` (monotonic)."""
        touched = set()
        for ask, grant in zip(asks, grants, strict=False):
            slot = self.slots.get(ask.quota)
            if slot is None:
                continue
            touched.add(ask.quota)
            lease = _find(slot, ask.lease_id)
            if grant.error:
                if slot.error != grant.error:
                    log.warning("quota %s: %s", ask.quota, grant.error)
                slot.error = grant.error
                slot.lease = None
                slot.draining = [d for d in slot.draining if d is not lease]
                continue
            if lease is None:
                continue
            lease.granted_tokens = max(lease.granted_tokens, grant.granted_tokens)
            lease.granted_nusd = max(lease.granted_nusd, grant.granted_nusd)
            lease.acked_spent = (ask.spent_tokens, ask.spent_nusd)
            lease.acked_refused = ask.refused
            lease.ttl_s = grant.ttl_ms / 1000
            lease.expires_at = sent_at + lease.ttl_s
            lease.window_start_ms = grant.window_start_unix_ms
            lease.window_end_ms = grant.window_end_unix_ms
            if ask.close:
                slot.draining = [d for d in slot.draining if d is not lease]
            if lease is slot.lease:
                slot.used, slot.available = _used(grant), _available(grant)
                slot.shortfall = (0, 0)
        for key in touched:
            slot = self.slots[key]
            slot.in_flight = False
            slot.signal()

    def disconnected(self) -> None:
        """The stream ended: asks in flight are lost (they are sent again, harmlessly)."""
        self.connected = False
        for slot in self.slots.values():
            slot.in_flight = False
            slot.signal()

    def close_all(self) -> None:
        """Stop leasing: every lease drains and is closed once its requests settled."""
        for slot in self.slots.values():
            slot.rule = _retired(slot.rule)
            if slot.lease is not None:
                slot.draining.append(slot.lease)
                slot.lease = None
        self.wake.set()

    @property
    def open_leases(self) -> int:
        """Leases not closed yet, current and draining."""
        return sum((slot.lease is not None) + len(slot.draining) for slot in self.slots.values())

    def _slot(self, rule: QuotaRule) -> Slot:
        slot = self.slots.get(rule.key)
        if slot is None:
            slot = self.slots[rule.key] = Slot(rule)
        return slot

    def _reserve(
        self,
        rules: Sequence[QuotaRule],
        facts: QuotaFacts,
        skip: frozenset[str],
        may_wait: bool,
    ) -> Outcome:
        applicable = [
            r for r in rules if r.key not in skip and r.applies(self.identity, facts.model)
        ]
        if not applicable:
            return FREE
        now = self.clock()
        asked = facts.max_output_tokens
        output = (
            (DEFAULT_MAX_OUTPUT_TOKENS if asked is None else asked) if facts.produces_output else 0
        )
        least = min(MIN_OUTPUT_TOKENS, output)
        leases: list[tuple[Slot, LocalLease]] = []
        short: list[Slot] = []
        refuse: Slot | None = None
        for rule in applicable:
            slot = self._slot(rule)
            if slot.error:
                continue  # the operator says it does not apply to this pod
            lease = slot.usable(now)
            allowed = self._allowed(rule, lease, facts, output)
            if allowed < output:
                need_tokens = rule.limit_tokens is not None and (
                    lease is None or lease.free_tokens < facts.input_tokens + output
                )
                need_nusd = rule.limit_nusd is not None and (
                    lease is None or lease.free_nusd < facts.cost_nusd(output)
                )
                if may_wait and self.connected and slot.can_grow(need_tokens, need_nusd):
                    slot.shortfall = (
                        facts.input_tokens + output if need_tokens else 0,
                        facts.cost_nusd(output) if need_nusd else 0,
                    )
                    short.append(slot)
            if allowed < least and refuse is None:
                refuse = slot
            if lease is not None:
                leases.append((slot, lease))
            output = min(output, max(allowed, 0))
        if short:
            raise _Short(short)
        if refuse is not None:
            return self._refuse(refuse, now)
        holds = []
        for slot, lease in leases:
            tokens = facts.input_tokens + output if slot.rule.limit_tokens is not None else 0
            nusd = facts.cost_nusd(output) if slot.rule.limit_nusd is not None else 0
            lease.held_tokens += tokens
            lease.held_nusd += nusd
            slot.tokens.add(tokens, now)
            slot.nusd.add(nusd, now)
            holds.append(Hold(lease, tokens, nusd))
        if not facts.produces_output:
            return Reservation(tuple(holds))
        clamped = asked is None or output < asked
        return Reservation(tuple(holds), output, clamped)

    def _allowed(
        self, rule: QuotaRule, lease: LocalLease | None, facts: QuotaFacts, output: int
    ) -> int:
        """The most output tokens `lease` can cover for this request (-1: not even its input)."""
        if lease is None:
            return -1
        allowed = output
        if rule.limit_tokens is not None:
            allowed = min(allowed, lease.free_tokens - facts.input_tokens)
        if rule.limit_nusd is not None:
            left = lease.free_nusd - facts.cost_nusd(0)
            if left < 0:
                return -1
            if facts.output_nusd_per_token > 0:
                allowed = min(allowed, math.floor(left / facts.output_nusd_per_token))
        return allowed if allowed >= 0 else -1

    def _refuse(self, slot: Slot, now: float) -> Refusal | Downgrade:
        rule = slot.rule
        if slot.lease is not None:
            slot.lease.refused += 1
        else:
            slot.refused += 1
        self.wake.set()
        if rule.downgrade_to:
            return Downgrade(rule.key, rule.downgrade_to)
        lease = slot.usable(now)
        if lease is None:
            message = (
                f"Quota '{rule.key}' has no budget on this sidecar: the control plane has not "
                "lent any (it may be unreachable); try again shortly."
            )
            return Refusal(rule.key, message, UNAVAILABLE_RETRY_S)
        if not any(left is not None and left <= 0 for left in slot.available):
            message = f"Quota '{rule.key}' has no budget left on this sidecar; try again shortly."
            return Refusal(rule.key, message, 1)
        end = lease.window_end_ms
        retry = max(1, math.ceil(end / 1000 - self.wall()))
        message = f"Quota '{rule.key}' exceeded: {_usage_text(slot)}; it resets at {_iso(end)}."
        return Refusal(rule.key, message, retry, end)


def _find(slot: Slot, lease_id: str) -> LocalLease | None:
    for lease in (slot.lease, *slot.draining):
        if lease is not None and lease.lease_id == lease_id:
            return lease
    return None


def _used(grant: control_plane_pb2.LeaseGrant) -> tuple[int | None, int | None]:
    return (
        grant.used_tokens if grant.HasField("used_tokens") else None,
        grant.used_nusd if grant.HasField("used_nusd") else None,
    )


def _available(grant: control_plane_pb2.LeaseGrant) -> tuple[int | None, int | None]:
    return (
        grant.available_tokens if grant.HasField("available_tokens") else None,
        grant.available_nusd if grant.HasField("available_nusd") else None,
    )


def _local_percent(slot: Slot, lease: LocalLease) -> float:
    """Spent by every sidecar in percent of the limit, as this sidecar knows it."""
    shares = []
    extra_tokens, extra_nusd = lease.unreported()
    for used, limit, extra in (
        (slot.used[0], slot.rule.limit_tokens, extra_tokens),
        (slot.used[1], slot.rule.limit_nusd, extra_nusd),
    ):
        if used is not None and limit:
            shares.append(100.0 * (used + extra) / limit)
    return max(shares, default=0.0)


def _usage_text(slot: Slot) -> str:
    rule = slot.rule
    parts = []
    if rule.limit_tokens is not None:
        used = slot.used[0] or 0
        parts.append(f"{used:,} of {rule.limit_tokens:,} tokens used")
    if rule.limit_nusd is not None:
        used_usd = (slot.used[1] or 0) / 1e9
        parts.append(f"${used_usd:,.2f} of ${rule.limit_nusd / 1e9:,.2f} spent")
    return " and ".join(parts) + " in this window"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def _retired(rule: QuotaRule) -> QuotaRule:
    """The rule of a quota no longer configured: its slot drains and opens no lease."""
    return QuotaRule("", rule.limit_tokens, rule.limit_nusd, rule.soft_percent)
