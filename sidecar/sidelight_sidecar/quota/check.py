"""The quota step of the proxy: reserve after routing, settle after the answer.

`check_quota` runs once a request is routed and before any provider call.
It asks the gate for a reservation (local: no network unless a lease is
short and may grow, see gate.py) and then:

- refused: the caller gets a 429 `quota_exceeded` in its format naming the
  quota and when its window resets (span event `sidelight.quota.refused`);
- downgraded: the request goes to the quota's downgrade backend instead
  (span event `sidelight.quota.downgrade`), checked again against the other
  quotas;
- reserved: the span records the quotas checked and the tokens held; an
  output limit lowered to fit the reservation is written into the request.

`settle_quota` charges the provider's usage and cost to the leases and adds
`sidelight.quota.soft_threshold` to the span of a request that crossed a
soft threshold.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from sidelight_sidecar.attempt import Exchange, visibility_headers
from sidelight_sidecar.quota.gate import QuotaGate
from sidelight_sidecar.quota.request import (
    QUOTA_EXCEEDED,
    limit_output,
    quota_facts,
    refusal_response,
)
from sidelight_sidecar.quota.rules import NUSD_PER_USD, Downgrade, Refusal
from sidelight_sidecar.runtime import Backend, Decision, RuntimeConfig
from sidelight_sidecar.upstream import Operation

DOWNGRADE_MISSING_RETRY_S = 60


async def check_quota(
    gate: QuotaGate,
    ex: Exchange,
    config: RuntimeConfig,
    candidates: list[Backend],
    input_tokens: int,
    serves: Callable[[Backend, Operation], bool],
) -> web.Response | tuple[Decision, list[Backend]]:
    """The refusal to answer, or the (possibly downgraded) route and backends to call."""
    inbound, decision = ex.inbound, ex.decision
    assert inbound is not None
    assert decision is not None
    skip: frozenset[str] = frozenset()
    while True:
        facts = quota_facts(ex.op, inbound.body, inbound.model, input_tokens, candidates)
        outcome = await gate.acquire(config.quotas, facts, skip)
        if not isinstance(outcome, Downgrade):
            break
        route = config.direct.get(outcome.backend)
        served = [b for b in route.candidates if serves(b, ex.op)] if route else []
        ex.span.add_event(
            "sidelight.quota.downgrade",
            {"sidelight.quota": outcome.quota, "sidelight.quota.backend": outcome.backend},
        )
        if route is None or not served:
            message = (
                f"Quota '{outcome.quota}' is spent and its downgrade backend "
                f"'{outcome.backend}' does not serve this request."
            )
            outcome = Refusal(outcome.quota, message, DOWNGRADE_MISSING_RETRY_S)
            break
        decision = Decision(route, config.policies[route.route_set], direct=True)
        ex.decision, candidates, skip = decision, served, skip | {outcome.quota}
    if isinstance(outcome, Refusal):
        ex.error_type, ex.error_source = QUOTA_EXCEEDED, "quota"
        ex.span.add_event(
            "sidelight.quota.refused",
            {
                "sidelight.quota": outcome.quota,
                "sidelight.quota.retry_after_s": outcome.retry_after_s,
            },
        )
        return refusal_response(ex.op.api_format, outcome, visibility_headers(ex))
    ex.quota = outcome
    if outcome.holds:
        ex.span.set_attributes(
            {
                "sidelight.quota.checked": list(outcome.quotas),
                "sidelight.quota.reserved_tokens": max(h.tokens for h in outcome.holds),
                "sidelight.quota.clamped": outcome.clamped,
            }
        )
        if outcome.clamped and outcome.max_output_tokens is not None:
            limit_output(ex.op, inbound.body, outcome.max_output_tokens)
            ex.span.set_attribute("sidelight.quota.max_output_tokens", outcome.max_output_tokens)
    return decision, candidates


def settle_quota(gate: QuotaGate, ex: Exchange) -> None:
    """Charge what the provider used to the leases; mark a soft threshold crossed."""
    served = ex.served
    price = served.price if served is not None else None
    cost = price.cost(ex.input_tokens, ex.output_tokens) if price is not None else 0.0
    crossed = gate.settle(ex.quota, ex.input_tokens, ex.output_tokens, round(cost * NUSD_PER_USD))
    for quota in crossed:
        ex.span.add_event("sidelight.quota.soft_threshold", {"sidelight.quota": quota})
