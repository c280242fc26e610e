"""Load balancing over real endpoints, and version-consistent config swaps."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from sidelight_fake_provider.faults import FaultRule
from sidelight_fake_provider.server import FakeProvider
from tests.sidecar.harness import Harness

ROUTES = """
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: pool, namespace: shop}
spec:
  backends:
  - name: gpt-4o
    provider: openai
    model: gpt-4o
    endpoints:
    - {url: "EAST_URL/v1", weight: 3}
    - {url: "WEST_URL/v1", weight: 1}
    credentials: {secretRef: {name: openai, key: api-key}}
  routes:
  - {name: default, routeTo: gpt-4o}
  loadBalancing: {strategy: STRATEGY, ejection: {consecutiveFailures: 2, cooldown: 30s}}
  retry: {attempts: 3, backoff: {base: 1ms, max: 2ms}}
"""
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def pool(harness: Harness) -> Harness:
    for name in ("east", "west"):
        fake = FakeProvider(name)
        await fake.start()
        harness.extra_fakes[name] = fake
    return harness


@pytest.fixture(autouse=True)
async def stop_pool(harness: Harness) -> object:
    yield None
    for fake in harness.extra_fakes.values():
        await fake.stop()


def counts(h: Harness) -> dict[str, int]:
    return {name: len(f.requests) for name, f in h.extra_fakes.items()}


async def test_weighted_round_robin_distribution(pool: Harness) -> None:
    pool.apply(ROUTES.replace("STRATEGY", "weighted-round-robin"))
    for _ in range(40):
        await pool.oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert counts(pool) == {"east": 30, "west": 10}


async def test_least_outstanding_spreads_concurrent_requests(pool: Harness) -> None:
    pool.apply(ROUTES.replace("STRATEGY", "least-outstanding").replace("weight: 3", "weight: 1"))
    pool.extra_fakes["east"].add_fault(FaultRule(latency_ms=1000))
    create = pool.oai.chat.completions.create
    pair = [asyncio.create_task(create(model="gpt-4o", messages=MESSAGES)) for _ in range(2)]
    while sum(counts(pool).values()) < 2:
        await asyncio.sleep(0.005)
    assert counts(pool) == {"east": 1, "west": 1}  # equal outstanding: one each
    # While east's request is outstanding, every sequential request goes west.
    for _ in range(8):
        await create(model="gpt-4o", messages=MESSAGES)
    assert counts(pool) == {"east": 1, "west": 9}
    await asyncio.gather(*pair)


async def test_latency_ewma_prefers_the_fast_endpoint(pool: Harness) -> None:
    pool.apply(ROUTES.replace("STRATEGY", "latency-ewma").replace("weight: 3", "weight: 1"))
    pool.extra_fakes["east"].add_fault(FaultRule(latency_ms=200))
    for _ in range(20):
        await pool.oai.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    distribution = counts(pool)
    assert distribution["west"] >= 15, distribution


async def test_failing_endpoint_is_ejected(pool: Harness) -> None:
    pool.apply(ROUTES.replace("STRATEGY", "weighted-round-robin"))
    pool.extra_fakes["east"].add_fault(FaultRule(status=503))
    for _ in range(10):
        raw = await pool.oai.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=MESSAGES,
        )
        assert raw.status_code == 200
    # Two failures eject east for 30 s; every later request goes west first time.
    assert counts(pool)["east"] == 2
    assert counts(pool)["west"] == 10


async def test_in_flight_request_finishes_on_its_version(pool: Harness) -> None:
    first = pool.apply(ROUTES.replace("STRATEGY", "least-outstanding").replace("WEST", "EAST"))
    pool.extra_fakes["east"].add_fault(FaultRule(latency_ms=500, times=1))

    async def slow_call() -> dict[str, str]:
        raw = await pool.oai.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES
        )
        return dict(raw.headers)

    slow = asyncio.create_task(slow_call())
    while not pool.extra_fakes["east"].requests:
        await asyncio.sleep(0.01)
    second = pool.apply(ROUTES.replace("STRATEGY", "least-outstanding").replace("EAST", "WEST"))
    assert first != second
    fast = await pool.oai.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=MESSAGES
    )
    done = await slow
    assert done["x-sidelight-config-version"] == first
    assert fast.headers["x-sidelight-config-version"] == second
    assert Counter(r.path for r in pool.extra_fakes["west"].requests) == {"/v1/chat/completions": 1}
