"""Config propagation: from a change to the sidecars' ACKs, for 1 and for 100 sidecars.

One process, loopback only: a control-plane `Hub` over LLMRoute resources,
served by the real gRPC server, and N real `ControlPlaneAgent`s, each with
its own `ConfigStore` (the sidecar's store, without the HTTP server), each
a pod of its own. Every trial edits the resources (a new route name), calls
`notify_changed()` as the operator's handlers do after an apply, and times
each sidecar's ACK of the new version, measured on the hub.

The snapshot of every pod is compiled on its own (`select_for_pod`, then
`compile_snapshot`, as the operator does), so the figures include N
compiles, N pushes, N builds of the runtime and N ACKs, all on one event
loop: the hub and every agent share one core, which overstates the cost
of a real cluster, where each sidecar builds in its own pod. The debounce
(100 ms by default, as in the operator) is part of every figure.

    .venv/bin/python bench/propagation_bench.py [--sidecars 1 100] [--trials 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from sidelight_operator.compile import compile_snapshot, select_for_pod
from sidelight_operator.controlplane import Hub, LoopbackAuthenticator, PodRef, Session, serve
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import ControlPlaneAgent
from sidelight_sidecar.config_store import ConfigStore
from sidelight_sidecar.retry import Backoff

NAMESPACE = "bench"
TIMEOUT_S = 60.0  # one trial, or the connect of every agent


def resources(generation: int) -> list[dict[str, Any]]:
    """Three backends and four rules, like the seed routes; the last rule's name changes."""
    backends = [
        {
            "name": name,
            "provider": "openai-compatible",
            "model": name,
            "endpoints": [{"url": f"http://127.0.0.1:9/{name}/v1"}],
        }
        for name in ("small", "medium", "large")
    ]
    routes = [
        {"name": "summaries", "match": {"taskType": "summarization"}, "routeTo": "small"},
        {"name": "low", "match": {"userPriority": "low"}, "routeTo": "small"},
        {"name": "long", "match": {"inputTokensGt": 2000}, "routeTo": "large"},
        {"name": f"default-{generation}", "routeTo": "medium", "fallbacks": ["large"]},
    ]
    return [
        {
            "apiVersion": "sidelight.io/v1alpha1",
            "kind": "LLMRoute",
            "metadata": {"namespace": NAMESPACE, "name": "assistant", "generation": generation},
            "spec": {"backends": backends, "routes": routes},
        }
    ]


class TimedHub(Hub):
    """A hub that notes when each pod acked the version it waits for."""

    target = ""
    expected = 0
    acked_at: dict[str, float]
    all_acked: asyncio.Event

    def receive(self, session: Session, request: control_plane_pb2.SnapshotRequest) -> None:
        super().receive(session, request)
        if session.acked_version == self.target:
            self.acked_at.setdefault(session.pod.name, time.perf_counter())
            if len(self.acked_at) == self.expected:
                self.all_acked.set()


class Bench:
    """The hub, its resources, and when each sidecar acked each version."""

    def __init__(self, debounce_s: float) -> None:
        self.resources = resources(0)
        self.hub = TimedHub(self.snapshot_for, debounce_s)
        self.hub.acked_at = {}

    def snapshot_for(self, pod: PodRef) -> snapshot_pb2.Snapshot:
        selected = select_for_pod(self.resources, pod.namespace, pod.labels)
        return compile_snapshot(selected).snapshot

    async def trial(self, generation: int, sidecars: int) -> list[float]:
        """Seconds from the change to each sidecar's ACK of it."""
        self.resources = resources(generation)
        self.hub.target = compile_snapshot(self.resources).snapshot.version
        self.hub.expected, self.hub.acked_at = sidecars, {}
        self.hub.all_acked = asyncio.Event()
        start = time.perf_counter()
        self.hub.notify_changed()
        await asyncio.wait_for(self.hub.all_acked.wait(), TIMEOUT_S)
        return [t - start for t in self.hub.acked_at.values()]


async def measure(sidecars: int, trials: int, debounce_s: float) -> tuple[list[float], list[float]]:
    """Per-sidecar latencies and per-trial "all acked" times, over `trials` changes."""
    bench = Bench(debounce_s)
    server = await serve(bench.hub, LoopbackAuthenticator(), "127.0.0.1:0")
    agents = [
        ControlPlaneAgent(
            ConfigStore(),
            f"127.0.0.1:{server.port}",
            control_plane_pb2.Node(pod=f"pod-{i}", namespace=NAMESPACE, uid=f"uid-{i}"),
            backoff=Backoff(base_s=0.05, max_s=1.0),
        )
        for i in range(sidecars)
    ]
    try:
        connected = asyncio.Event()

        def all_synced() -> None:
            if sum(s.synced for s in bench.hub.sidecars()) == sidecars:
                connected.set()

        bench.hub.listeners.append(all_synced)
        for agent in agents:
            agent.start()
        await asyncio.wait_for(connected.wait(), TIMEOUT_S)
        bench.hub.listeners.remove(all_synced)
        each: list[float] = []
        whole: list[float] = []
        for generation in range(1, trials + 1):
            latencies = await bench.trial(generation, sidecars)
            each.extend(latencies)
            whole.append(max(latencies))
        return each, whole
    finally:
        for agent in agents:
            await agent.stop()
        await server.stop(None)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


async def main(sidecar_counts: list[int], trials: int, debounce_s: float) -> None:
    print(f"change -> ACK, debounce {debounce_s * 1000:.0f} ms, {trials} changes per row")
    print(f"{'sidecars':>8}  {'p50':>10}  {'p90':>10}  {'max':>10}  {'all acked p50':>14}")
    for count in sidecar_counts:
        each, whole = await measure(count, trials, debounce_s)
        p90 = statistics.quantiles(each, n=10)[-1] if len(each) > 1 else each[0]
        print(
            f"{count:>8}  {_ms(statistics.median(each)):>10}  {_ms(p90):>10}  "
            f"{_ms(max(each)):>10}  {_ms(statistics.median(whole)):>14}"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sidecars", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--debounce", type=float, default=0.1, help="seconds (operator: 0.1)")
    return parser.parse_args()


if __name__ == "__main__":
    args = parse_args()
    asyncio.run(main(args.sidecars, args.trials, args.debounce))
