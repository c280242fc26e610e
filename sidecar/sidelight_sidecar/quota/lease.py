"""A sidecar's leases: the budget it holds per quota, and what to ask the operator next.

`LocalLease` mirrors one lease of the operator's ledger with the same
cumulative counters (granted by the operator; spent, returned and refused by
the sidecar) plus what is held by requests in flight. Its `free` budget is
granted - returned - spent - held: the only budget a request may reserve.
A lease is usable until its expiry, measured on the sidecar's monotonic clock
from the moment the ask was *sent* (so it ends before the operator's view of
it does) and never past the window's end.

`Slot` is one quota's state: the current lease, older leases draining (held
by requests in flight, closed once they settle), what the operator last said
about the whole quota, and the demand that sizes the next ask: enough for
`HORIZON_S` seconds of the recent reservation rate and twice the largest
recent request. Budget far beyond that is returned, so it can serve other
sidecars.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

from sidelight_proto.v1 import control_plane_pb2
from sidelight_sidecar.quota.rules import QuotaRule

HORIZON_S = 5.0
DEMAND_HALF_LIFE_S = 5.0
MIN_TARGET_TOKENS = 8192
MIN_TARGET_NUSD = 100_000_000  # $0.10
REPORT_INTERVAL_S = 1.0
RETURN_FACTOR = 4  # return what is above RETURN_FACTOR * target, down to 2 * target


class LocalLease:
    """One lease as the sidecar holds it."""

    def __init__(self, quota: str, lease_id: str | None = None) -> None:
        self.quota = quota
        self.lease_id = lease_id or secrets.token_hex(12)
        self.granted_tokens = self.granted_nusd = 0
        self.returned_tokens = self.returned_nusd = 0
        self.spent_tokens = self.spent_nusd = 0
        self.held_tokens = self.held_nusd = 0
        self.refused = 0
        self.expires_at = 0.0  # monotonic; 0: never granted
        self.ttl_s = 0.0
        self.window_start_ms = self.window_end_ms = 0
        self.acked_spent = (0, 0)  # what the operator has heard
        self.acked_refused = 0
        self.sent_at = 0.0

    @property
    def free_tokens(self) -> int:
        """Tokens that a request may still reserve."""
        return self.granted_tokens - self.returned_tokens - self.spent_tokens - self.held_tokens

    @property
    def free_nusd(self) -> int:
        """Nano-dollars that a request may still reserve."""
        return self.granted_nusd - self.returned_nusd - self.spent_nusd - self.held_nusd

    @property
    def held(self) -> bool:
        """Requests in flight hold some of it."""
        return self.held_tokens > 0 or self.held_nusd > 0

    def live(self, now: float) -> bool:
        """Whether requests may reserve from it now."""
        return now < self.expires_at

    def unreported(self) -> tuple[int, int]:
        """Spent since the operator last heard."""
        return self.spent_tokens - self.acked_spent[0], self.spent_nusd - self.acked_spent[1]

    def ask(self, **more: int | bool) -> control_plane_pb2.LeaseAsk:
        """An ask that reports this lease's counters (and `more`)."""
        return control_plane_pb2.LeaseAsk(
            quota=self.quota,
            lease_id=self.lease_id,
            spent_tokens=self.spent_tokens,
            spent_nusd=self.spent_nusd,
            returned_tokens=self.returned_tokens,
            returned_nusd=self.returned_nusd,
            refused=self.refused,
            held_tokens=self.held_tokens,
            held_nusd=self.held_nusd,
            **more,  # type: ignore[arg-type]
        )


@dataclass
class Demand:
    """Recent reservations: a decaying rate and a decaying peak, per unit."""

    rate: float = 0.0  # per second
    peak: float = 0.0
    at: float = 0.0

    def add(self, amount: int, now: float) -> None:
        """Count a reservation of `amount` made at `now`."""
        self._decay(now)
        self.rate += amount / DEMAND_HALF_LIFE_S
        self.peak = max(self.peak, float(amount))

    def target(self, floor: int, now: float) -> int:
        """The free budget to hold: enough for the horizon and two of the largest requests."""
        self._decay(now)
        return int(max(floor, self.rate * HORIZON_S, 2 * self.peak))

    def _decay(self, now: float) -> None:
        if self.at:
            factor = 0.5 ** ((now - self.at) / DEMAND_HALF_LIFE_S)
            self.rate *= factor
            self.peak *= factor
        self.at = now


@dataclass
class Slot:
    """One quota's leases and what is known of it."""

    rule: QuotaRule
    lease: LocalLease | None = None
    draining: list[LocalLease] = field(default_factory=list)
    in_flight: bool = False
    error: str = ""  # the operator says the quota does not apply to this pod
    used: tuple[int | None, int | None] = (None, None)  # spent by all, as of the last grant
    available: tuple[int | None, int | None] = (None, None)  # left to lend, ditto
    shortfall: tuple[int, int] = (0, 0)  # wanted now by a waiting request
    refused: int = 0  # refusals while no lease was open
    tokens: Demand = field(default_factory=Demand)
    nusd: Demand = field(default_factory=Demand)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def usable(self, now: float) -> LocalLease | None:
        """The lease requests may reserve from now, if any."""
        lease = self.lease
        return lease if lease is not None and lease.live(now) else None

    def can_grow(self, tokens: bool, nusd: bool) -> bool:
        """Whether asking the operator could bring more of the units that are short."""
        left_tokens, left_nusd = self.available
        if left_tokens is None and left_nusd is None:  # never heard: ask
            return True
        return (not tokens or (left_tokens or 0) > 0) and (not nusd or (left_nusd or 0) > 0)

    def signal(self) -> None:
        """Wake the requests waiting for a grant."""
        self.changed.set()
        self.changed = asyncio.Event()

    def asks(self, now: float, active: bool) -> list[control_plane_pb2.LeaseAsk]:
        """What to send about this quota now (nothing while an ask is in flight)."""
        if self.in_flight:
            return []
        lease = self.lease
        if lease is not None and lease.expires_at and not lease.live(now):
            self.draining.append(lease)
            self.lease = lease = None
        asks = [old.ask(close=True) for old in self.draining if not old.held]
        if active and not self.error:
            if lease is None:
                self.lease = lease = LocalLease(self.rule.key)
                lease.refused, self.refused = self.refused, 0
            ask = self._renewal(lease, now)
            if ask is not None:
                asks.append(ask)
        self.in_flight = bool(asks)
        for ask in asks:
            for held in (self.lease, *self.draining):
                if held is not None and held.lease_id == ask.lease_id:
                    held.sent_at = now
        return asks

    def _renewal(self, lease: LocalLease, now: float) -> control_plane_pb2.LeaseAsk | None:
        rule = self.rule
        want = {"want_tokens": 0, "want_nusd": 0}
        returned = (lease.returned_tokens, lease.returned_nusd)
        for unit, limit, free, demand, floor, short in (
            ("tokens", rule.limit_tokens, lease.free_tokens, self.tokens, MIN_TARGET_TOKENS, 0),
            ("nusd", rule.limit_nusd, lease.free_nusd, self.nusd, MIN_TARGET_NUSD, 1),
        ):
            if limit is None:
                continue
            target = demand.target(min(floor, limit), now) + self.shortfall[short]
            if free < target // 2 or self.shortfall[short]:
                want[f"want_{unit}"] = target - free
            elif free > RETURN_FACTOR * target and lease.expires_at:
                if unit == "tokens":
                    lease.returned_tokens += free - 2 * target
                else:
                    lease.returned_nusd += free - 2 * target
        due = (
            not lease.expires_at
            or any(want.values())
            or lease.expires_at - now < lease.ttl_s / 3
            or (lease.returned_tokens, lease.returned_nusd) != returned
            or lease.refused != lease.acked_refused
            or (any(lease.unreported()) and now - lease.sent_at >= REPORT_INTERVAL_S)
        )
        return lease.ask(**want) if due else None
