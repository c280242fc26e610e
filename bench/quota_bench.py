"""What a quota check adds to a request, as a ratio to the same request without quota.

    python bench/quota_bench.py [--requests N] [--json FILE]

One process, one run: a fake OpenAI provider, an operator-side lease server
on loopback (the ControlPlane's Leases stream over a real ledger), and two
sidecars with the same LLMRoute, one of them also under an LLMQuota whose
limit is never reached. Requests (a 200-token chat, 64 output tokens) go one
at a time, alternating between the two sidecars so that both see the same
machine; the figure is the latency of the quota sidecar over the plain one
(p50 and p99), and the quota step alone (`QuotaGate.reserve` + `settle`,
the only part on the request path: leases are local and refilled by the
keeper off the path, so no request waits for the network).

The quota sidecar also counts input tokens (o200k, the model's encoding),
which the plain one skips when no rule needs it: that is part of the check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from prometheus_client import CollectorRegistry

from sidelight_fake_provider.server import FakeProvider
from sidelight_operator.compile import compile_snapshot
from sidelight_operator.controlplane import Hub, LoopbackAuthenticator, serve
from sidelight_operator.quota.service import QuotaService
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import ControlPlaneConnection
from sidelight_sidecar.identity import Identity
from sidelight_sidecar.quota import QuotaFacts, QuotaGate, Reservation, build_quota_rules
from sidelight_sidecar.server import Sidecar, SidecarOptions

ROUTE = """
apiVersion: sidelight.io/v1alpha1
kind: LLMRoute
metadata: {name: bench, namespace: bench}
spec:
  backends:
  - name: gpt-4o
    provider: openai
    model: gpt-4o
    endpoints: [{url: "URL/v1"}]
    credentials: {secretRef: {name: key, key: key}}
  routes: [{name: default, routeTo: gpt-4o}]
---
apiVersion: v1
kind: Secret
metadata: {name: key, namespace: bench}
stringData: {key: sk-bench}
"""
QUOTA = """
---
apiVersion: sidelight.io/v1alpha1
kind: LLMQuota
metadata: {name: budget, namespace: bench}
spec:
  window: {calendar: month}
  limits: {tokens: 1000000000000, costUSD: 1000000}
"""
PROMPT = " ".join(["The quarterly report covers revenue, costs and the hiring plan."] * 18)
BODY = {"model": "gpt-4o", "max_tokens": 64, "messages": [{"role": "user", "content": PROMPT}]}


def compiled(text: str) -> snapshot_pb2.Snapshot:
    """Compile YAML; fail on any error."""
    result = compile_snapshot([d for d in yaml.safe_load_all(text) if d])
    errors = [d for d in result.diagnostics if d.severity == "error"]
    if errors:
        raise SystemExit(f"bench configuration does not compile: {errors}")
    return result.snapshot


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def timed(http: aiohttp.ClientSession, url: str) -> float:
    """Seconds for one request through a sidecar."""
    started = time.perf_counter()
    async with http.post(f"{url}/v1/chat/completions", json=BODY) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"{url}: HTTP {response.status}")
    return time.perf_counter() - started


def gate_cost(repeat: int) -> float:
    """Microseconds of one reserve + settle on a lease that covers it (the path's quota step)."""
    gate = QuotaGate(Identity("bench", "pod"))
    snapshot = compiled(ROUTE.replace("URL", "http://127.0.0.1:1") + QUOTA)
    rules = build_quota_rules(snapshot.quotas)
    gate.configure(rules)
    [ask] = gate.asks()
    grant = control_plane_pb2.LeaseGrant(
        quota=ask.quota,
        lease_id=ask.lease_id,
        granted_tokens=10**15,
        granted_nusd=10**18,
        ttl_ms=3_600_000,
    )
    gate.apply([ask], [grant], time.monotonic())
    facts = QuotaFacts("gpt-4o", 200, 64, True, 2500.0, 10_000.0)
    started = time.perf_counter()
    for _ in range(repeat):
        held = gate.reserve(rules, facts)
        assert isinstance(held, Reservation)
        gate.settle(held, 200, 64, 1_140_000)
    return (time.perf_counter() - started) / repeat * 1e6


async def run(requests: int) -> dict[str, float]:
    """Both sidecars, interleaved; the latencies and their ratio."""
    fake = FakeProvider("openai")
    await fake.start()
    plain_snapshot = compiled(ROUTE.replace("URL", fake.url))
    quota_snapshot = compiled(ROUTE.replace("URL", fake.url) + QUOTA)
    with tempfile.TemporaryDirectory() as scratch:
        quotas = QuotaService(
            Path(scratch) / "ledger.db",
            CollectorRegistry(),
            lambda pod: quota_snapshot.quotas,
            lambda *_: None,
        )
        server = await serve(
            Hub(lambda pod: quota_snapshot),
            LoopbackAuthenticator(),
            "127.0.0.1:0",
            leases=quotas.lending,
        )
        plain = Sidecar(SidecarOptions(port=0), identity=Identity("bench", "plain"))
        limited = Sidecar(SidecarOptions(port=0), identity=Identity("bench", "limited"))
        plain.store.apply(plain_snapshot)
        limited.store.apply(quota_snapshot)
        node = control_plane_pb2.Node(namespace="bench", pod="limited")
        limited.enforce_quotas(ControlPlaneConnection(f"127.0.0.1:{server.port}"), node)
        await plain.start()
        await limited.start()
        try:
            async with aiohttp.ClientSession() as http:
                deadline = time.monotonic() + 10
                while limited.quota.slots and not any(
                    s.lease and s.lease.expires_at for s in limited.quota.slots.values()
                ):
                    if time.monotonic() > deadline:
                        raise SystemExit("the quota sidecar got no lease")
                    await asyncio.sleep(0.05)
                for _ in range(50):  # warm up both (connections, tokenizer)
                    await timed(http, plain.url)
                    await timed(http, limited.url)
                without, with_quota = [], []
                for _ in range(requests):
                    without.append(await timed(http, plain.url))
                    with_quota.append(await timed(http, limited.url))
        finally:
            await plain.stop()
            await limited.stop()
            await server.stop(None)
            await quotas.stop()
            await fake.stop()
    p50 = (statistics.median(without), statistics.median(with_quota))
    p99 = (percentile(without, 99), percentile(with_quota, 99))
    return {
        "requests": requests,
        "p50_ms_without": p50[0] * 1000,
        "p50_ms_with": p50[1] * 1000,
        "p99_ms_without": p99[0] * 1000,
        "p99_ms_with": p99[1] * 1000,
        "ratio_p50": p50[1] / p50[0],
        "ratio_p99": p99[1] / p99[0],
        "gate_us": gate_cost(20_000),
    }


def main() -> int:
    """Run, print the table, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = asyncio.run(run(args.requests))
    print(f"requests per sidecar: {figures['requests']}")
    print("                 without quota   with quota   ratio")
    for p in ("p50", "p99"):
        print(
            f"latency {p}       {figures[f'{p}_ms_without']:9.2f} ms  "
            f"{figures[f'{p}_ms_with']:9.2f} ms   {figures[f'ratio_{p}']:.3f}"
        )
    print(f"quota step alone (reserve + settle): {figures['gate_us']:.1f} us")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
