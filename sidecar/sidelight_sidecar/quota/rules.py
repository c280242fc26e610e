"""Quotas in their runtime shape, what a request tells the gate, and what the gate answers.

`build_quota_rules` turns a snapshot's `Quota` messages into `QuotaRule`s
once per version. A rule applies to a request when the sidecar's identity
(team, application, environment: the pod's labels) matches its scope and the
requested model is its model, if it names one.

Money is counted in integer nano-dollars (1e-9 USD), as the ledger does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sidelight_proto.v1 import snapshot_pb2
from sidelight_sidecar.identity import Identity

if TYPE_CHECKING:
    from sidelight_sidecar.quota.lease import LocalLease

NUSD_PER_USD = 1_000_000_000
NUSD_PER_TOKEN_PER_USD_PER_MILLION = 1000  # $1 per million tokens is 1000 nano-dollars a token


@dataclass(frozen=True)
class QuotaRule:
    """One LLMQuota as a sidecar enforces it."""

    key: str  # namespace/name
    limit_tokens: int | None
    limit_nusd: int | None
    soft_percent: float
    downgrade_to: str | None = None
    team: str = ""
    application: str = ""
    environment: str = ""
    model: str = ""

    def applies(self, identity: Identity, model: str) -> bool:
        """Whether a request for `model` from the pod of `identity` counts against this quota."""
        return (
            (not self.model or self.model == model)
            and (not self.team or self.team == identity.team)
            and (not self.application or self.application == identity.application)
            and (not self.environment or self.environment == identity.environment)
        )


def build_quota_rules(quotas: Iterable[snapshot_pb2.Quota]) -> tuple[QuotaRule, ...]:
    """The runtime shape of a snapshot's quotas, in snapshot order."""
    rules = []
    for q in quotas:
        action = q.WhichOneof("hard_action")
        rules.append(
            QuotaRule(
                key=f"{q.source.namespace}/{q.source.name}",
                limit_tokens=q.limit_tokens if q.HasField("limit_tokens") else None,
                limit_nusd=(
                    round(q.limit_cost_usd * NUSD_PER_USD) if q.HasField("limit_cost_usd") else None
                ),
                soft_percent=q.soft_threshold_percent or 80.0,
                downgrade_to=q.downgrade_to if action == "downgrade_to" else None,
                team=q.scope.team,
                application=q.scope.application,
                environment=q.scope.environment,
                model=q.scope.model,
            )
        )
    return tuple(rules)


@dataclass(frozen=True)
class QuotaFacts:
    """What the gate needs to know of a request before it goes to a provider."""

    model: str  # as the caller asked for it
    input_tokens: int  # counted by the sidecar
    max_output_tokens: int | None  # the request's own limit, times its choices; None: unset
    produces_output: bool = True  # False for embeddings
    input_nusd_per_token: float = 0.0  # the dearest backend the request may reach
    output_nusd_per_token: float = 0.0

    def cost_nusd(self, output_tokens: int) -> int:
        """The most this request can cost with `output_tokens` of output, rounded up."""
        cost = (
            self.input_tokens * self.input_nusd_per_token
            + output_tokens * self.output_nusd_per_token
        )
        return math.ceil(cost)


@dataclass(frozen=True)
class Hold:
    """Budget set aside on one lease for one request."""

    lease: LocalLease
    tokens: int
    nusd: int


@dataclass(frozen=True)
class Reservation:
    """The request may go: budget is held for it until `QuotaGate.settle`."""

    holds: tuple[Hold, ...] = ()
    max_output_tokens: int | None = None
    """The output limit the request must carry upstream (None: leave it as it is)."""
    clamped: bool = False
    """`max_output_tokens` is lower than what the request asked for (or it asked for none)."""

    @property
    def quotas(self) -> tuple[str, ...]:
        """The quotas charged, namespace/name."""
        return tuple(hold.lease.quota for hold in self.holds)


FREE = Reservation()
"""No quota applies: nothing held, nothing to settle."""


@dataclass(frozen=True)
class Refusal:
    """The request may not go: a quota's budget cannot cover it."""

    quota: str
    message: str
    retry_after_s: int
    window_end_ms: int | None = None


@dataclass(frozen=True)
class Downgrade:
    """The quota is spent and says: serve this request with another backend instead."""

    quota: str
    backend: str
