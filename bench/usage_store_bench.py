"""The usage store benchmark: records per second ingested on one core, queries over 1M rows.

One process pinned to one core fills a file-backed `UsageStore` (on a temporary
directory, WAL, as in the operator) with `--records` synthetic records spread
over 29 days, in batches of `--batch` (500: a full sidecar report), with the
Prometheus metrics bound as in the operator. The records come from 100
applications of 20 teams in 10 namespaces and 3 environments, each calling two
(route, model) pairs; 5% fall back to another model. Building the records is not
timed; only `ingest` is, in wall time and in CPU time (the machine may be
shared). Then it re-sends batches already stored (a sidecar reconnecting) and
times the queries the API makes, over the full store.

    .venv/bin/python bench/usage_store_bench.py [--records 1000000] [--batch 500] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from sidelight_operator.usage.metrics import UsageMetrics
from sidelight_operator.usage.store import DAY_S, UsageStore
from sidelight_proto.v1 import usage_pb2

SPREAD_S = 29 * DAY_S
APPLICATIONS = 100
MODELS = {
    "gpt-4o": "openai",
    "gpt-4o-mini": "openai",
    "claude-3-5-sonnet": "anthropic",
    "claude-3-5-haiku": "anthropic",
    "llama-3-70b": "vllm",
}
ROUTES = ["cheap-summaries", "default", "long-context", "priority"]
VERDICTS = [(), (), (), (), ("pass",), ("redacted",), ("blocked",), ("flagged", "pass")]


@dataclass(frozen=True)
class Workload:
    """An application's fixed identity and the two routes (and so models) it uses."""

    namespace: str
    team: str
    application: str
    environment: str
    routes: tuple[tuple[str, str], ...]


def build_workloads(rng: random.Random) -> list[Workload]:
    """100 applications of 20 teams in 10 namespaces, each on two (route, model) pairs."""
    models = list(MODELS)
    return [
        Workload(
            namespace=f"ns-{i % 10}",
            team=f"team-{i % 20}",
            application=f"app-{i}",
            environment=("prod", "staging", "dev")[i % 3],
            routes=tuple((rng.choice(ROUTES), rng.choice(models)) for _ in range(2)),
        )
        for i in range(APPLICATIONS)
    ]


def build_batch(
    rng: random.Random,
    workloads: list[Workload],
    start: int,
    size: int,
    first_ts: float,
    step: float,
) -> list[usage_pb2.UsageRecord]:
    """`size` records with ids start.., times first_ts + i*step; 5% fall back."""
    batch = []
    for i in range(start, start + size):
        workload = rng.choice(workloads)
        route, requested = rng.choice(workload.routes)
        fallback = rng.random() < 0.05
        served = rng.choice(list(MODELS)) if fallback else requested
        record = usage_pb2.UsageRecord(
            id=f"{i:016x}-{rng.getrandbits(64):016x}",
            identity=usage_pb2.Identity(
                namespace=workload.namespace,
                pod=f"{workload.application}-7d9f-{i % 5}",
                workload=workload.application,
                team=workload.team,
                application=workload.application,
                environment=workload.environment,
            ),
            api_format="openai",
            endpoint="chat.completions",
            requested_model=requested,
            served_model=served,
            backend=MODELS[served],
            route_set=f"{workload.namespace}/assistant",
            route=route,
            attempts=2 if fallback else 1,
            fallback=fallback,
            input_tokens=rng.randint(10, 4000),
            output_tokens=rng.randint(1, 1000),
            cost_usd=rng.random() / 10,
            latency_ms=rng.uniform(50, 5000),
            status=200 if rng.random() < 0.98 else 502,
            trace_id=f"{rng.getrandbits(128):032x}",
            guardrails=[
                usage_pb2.GuardrailVerdict(guardrail="shop/pii", verdict=v)
                for v in rng.choice(VERDICTS)
            ],
        )
        record.time.FromNanoseconds(int((first_ts + (i * step)) * 1e9))
        batch.append(record)
    return batch


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and maximum wall time of `call`, in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    rng = random.Random(7)
    workloads = build_workloads(rng)
    now = time.time()
    first_ts = now - SPREAD_S
    step = SPREAD_S / args.records
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="usage-bench-") as tmp:
        path = Path(tmp) / "usage.db"
        store = UsageStore(path)
        store.listeners.append(UsageMetrics(CollectorRegistry()).observe)
        ingest_s = ingest_cpu_s = 0.0
        new = 0
        last: list[usage_pb2.UsageRecord] = []
        for start in range(0, args.records, args.batch):
            size = min(args.batch, args.records - start)
            last = build_batch(rng, workloads, start, size, first_ts, step)
            started, started_cpu = time.perf_counter(), time.process_time()
            new += store.ingest(last)
            ingest_s += time.perf_counter() - started
            ingest_cpu_s += time.process_time() - started_cpu
        assert new == args.records, f"stored {new} of {args.records}"
        figures["ingest_records_per_s"] = args.records / ingest_s
        figures["ingest_records_per_cpu_s"] = args.records / ingest_cpu_s
        figures["ingest_ms_per_batch"] = ingest_s / (args.records / args.batch) * 1000
        started = time.perf_counter()
        for _ in range(10):
            assert store.ingest(last) == 0
        figures["duplicate_records_per_s"] = 10 * len(last) / (time.perf_counter() - started)
        with store.reading() as conn:
            (rollups,) = conn.execute("SELECT COUNT(*) FROM hourly").fetchone()
        figures["rollup_rows"] = rollups
        figures["db_mb"] = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        ragged = now - 7 * DAY_S - 1234.5
        queries: dict[str, Callable[[], object]] = {
            "cost_by_team_7d": lambda: store.cost_by("team", now - 7 * DAY_S, now),
            "cost_by_team_7d_ragged": lambda: store.cost_by("team", ragged, now - 17.25),
            "cost_by_application_30d": lambda: store.cost_by("application", now - 30 * DAY_S, now),
            "cost_by_served_model_30d": lambda: store.cost_by(
                "served_model", now - 30 * DAY_S, now
            ),
            "top_20_1d": lambda: store.top(20, now - DAY_S, now),
            "top_20_30d": lambda: store.top(20, now - 30 * DAY_S, now),
            "rates_30d": lambda: store.rates(now - 30 * DAY_S, now),
        }
        for name, query in queries.items():
            median, worst = timed(query, args.repeat)
            figures[f"{name}_ms_p50"] = median
            figures[f"{name}_ms_max"] = worst
        store.close()
    print(f"usage store, one core (cpu {core}), {args.records:,} records, batches of {args.batch}")
    for name, value in figures.items():
        print(f"  {name:36} {value:>14,.1f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
