"""The usage benchmark: what the operator ingests on one core, and what reporting costs a sidecar.

1. **Ingest.** The operator's ReportUsage (the grpc.aio server, identity
   stamping, the SQLite `UsageStore` on disk, as `sidelight operator` runs
   them) in a process of its own on one core. On the other core, N streams
   (sidecars) send reports built from a realistic record, W unanswered at a
   time. Figures: records acknowledged per second (an acknowledged record is
   committed) and the operator's CPU time per record.
2. **Sidecar.** Two sidecar processes on that core with the proxy benchmark's
   routes and request (bench/proxy_bench.py): one with no usage sink, one
   reporting to an operator on the other core through its on-disk spool. The
   Go load generator alternates between them, round by round. Figures:
   latency p50 and p99 one request at a time, throughput at concurrency 16,
   CPU per request, as ratios on/off; and whether the operator stored one
   record per request. A `SCHED_IDLE` spinner keeps that core out of its
   idle states (it yields to anything else at once): without it, one request
   at a time leaves the core idle between requests, and waking it costs
   milliseconds on a VM, more for the sidecar whose process has fewer
   threads awake, which made "off" look 2x slower than "on".

    .venv/bin/python bench/usage_bench.py [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from proxy_bench import (
    REQUEST,
    ROUTES,
    ROUTES_UPSTREAM,
    SECRET_ENV,
    BenchError,
    Driver,
    Fleet,
    Plan,
    Target,
    cpu_seconds,
    free_port,
    loadgen_binary,
    percentile,
    warm_up,
)

from sidelight_proto.v1 import control_plane_pb2, control_plane_pb2_grpc, usage_pb2
from sidelight_sidecar.usage import LINGER_S

SCRIPT = Path(__file__).resolve()
SPINNER = (
    "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True:\n    pass\n"
)
# (records per report, streams, reports unanswered per stream): busy sidecars, quiet ones.
INGEST_SHAPES = ((500, 4, 4), (20, 32, 1))


def template_record() -> usage_pb2.UsageRecord:
    """A record as a sidecar fills it for a routed, priced chat completion."""
    record = usage_pb2.UsageRecord(
        api_format="openai",
        endpoint="chat",
        requested_model="gpt-4o",
        served_model="gpt-4o-2024-08-06",
        backend="gpt-4o",
        route_set="shop/assistant",
        route="default",
        attempts=1,
        input_tokens=212,
        output_tokens=87,
        cost_usd=0.00140,
        latency_ms=843.2,
        status=200,
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        stream=True,
        snapshot_version="9f2c1d7e4b6a",
    )
    record.identity.namespace, record.identity.pod = "shop", "chat-7d9f8b6c4-x2x9q"
    record.identity.workload = "chat-7d9f8b6c4"
    record.time.GetCurrentTime()
    return record


async def run_operator(args: argparse.Namespace) -> None:
    """ReportUsage over a file-backed store on loopback, until SIGTERM."""
    from sidelight_operator.controlplane import Hub, LoopbackAuthenticator, UsageReporting, serve
    from sidelight_operator.usage import UsageStore

    def no_snapshot(pod: object) -> Any:
        raise LookupError("this operator serves usage only")

    store = UsageStore(args.store)
    reporting = UsageReporting(store)  # records are stamped with the pod's identity
    server = await serve(Hub(no_snapshot), LoopbackAuthenticator(), args.target, usage=reporting)
    await wait_for_sigterm()
    await server.stop(1.0)
    store.close()


async def run_sidecar(args: argparse.Namespace) -> None:
    """A sidecar on the routes, with or without a usage reporter, until SIGTERM."""
    from sidelight_cli.standalone import compile_files
    from sidelight_sidecar.agent import ControlPlaneConnection
    from sidelight_sidecar.server import Sidecar, SidecarOptions

    snapshot, _ = compile_files([args.routes], None)
    sidecar = Sidecar(SidecarOptions(port=args.port))
    sidecar.usage.linger_s = args.linger
    if args.report:
        node = control_plane_pb2.Node(namespace="shop", pod="bench")
        sidecar.report_usage(ControlPlaneConnection(args.report), node, args.spool)
    await sidecar.start()
    reason = sidecar.store.apply(snapshot)
    if reason is not None:
        raise SystemExit(f"the routes do not build: {reason}")
    await wait_for_sigterm()
    await sidecar.stop()


async def wait_for_sigterm() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


async def pump(target: str, batch: int, streams: int, window: int, reports: int) -> int:
    """`streams` streams of `reports` reports of `batch` fresh records each; records acked."""
    template = template_record()
    serial = itertools.count()

    def report() -> control_plane_pb2.UsageReport:
        out = control_plane_pb2.UsageReport()
        for _ in range(batch):
            record = out.records.add()
            record.CopyFrom(template)
            record.id = f"{next(serial):032x}-00f067aa0ba902b7"
        return out

    async def one(stub: control_plane_pb2_grpc.ControlPlaneAsyncStub, n: int) -> int:
        call = stub.ReportUsage(None)
        node = control_plane_pb2.Node(namespace="shop", pod=f"chat-7d9f8b6c4-{n:05d}")
        await call.write(control_plane_pb2.UsageReport(node=node))
        await call.read()
        slots = asyncio.Semaphore(window)

        async def write() -> None:
            for _ in range(reports):
                await slots.acquire()
                await call.write(report())
            await call.done_writing()

        writer = asyncio.create_task(write())
        acked = 0
        for _ in range(reports):
            ack = await call.read()
            assert isinstance(ack, control_plane_pb2.UsageAck)
            acked += len(ack.ids)
            slots.release()
        await writer
        return acked

    async with aio.insecure_channel(target) as channel:
        stub = control_plane_pb2_grpc.ControlPlaneStub(channel)
        return sum(await asyncio.gather(*(one(stub, n) for n in range(streams))))


def ingest(fleet: Fleet, workdir: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each shape against a fresh operator on the operator core."""
    results = []
    for batch, streams, window in INGEST_SHAPES:
        target = f"127.0.0.1:{free_port()}"
        store = workdir / f"ingest-{batch}.db"
        argv = [sys.executable, str(SCRIPT), "operator", "--target", target, "--store", str(store)]
        proc = fleet.start("operator", argv, args.measured_core)
        grpc.channel_ready_future(grpc.insecure_channel(target)).result(timeout=30)
        reports = max(1, args.ingest_records // (batch * streams))
        asyncio.run(pump(target, batch, streams, window, max(1, reports // 10)))  # warm-up
        cpu = cpu_seconds(proc.pid)
        started = time.perf_counter()
        acked = asyncio.run(pump(target, batch, streams, window, reports))
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds(proc.pid) - cpu
        fleet.stop("operator")
        results.append(
            {
                "batch": batch,
                "streams": streams,
                "window": window,
                "records": acked,
                "records_per_s": round(acked / elapsed),
                "operator_cpu_us_per_record": round(cpu / acked * 1e6, 1),
                "stored": count_records(store),
            }
        )
    return results


def count_records(store: Path) -> int:
    with sqlite3.connect(store) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM records").fetchone()
        return int(count)


@dataclass
class Pair:
    """The two sidecars under test and the operator the reporting one talks to."""

    off: Target
    on: Target
    store: Path


def start_pair(fleet: Fleet, workdir: Path, upstream: str, args: argparse.Namespace) -> Pair:
    target = f"127.0.0.1:{free_port()}"
    store = workdir / "sidecars.db"
    argv = [sys.executable, str(SCRIPT), "operator", "--target", target, "--store", str(store)]
    fleet.start("operator", argv, args.harness_core)
    grpc.channel_ready_future(grpc.insecure_channel(target)).result(timeout=30)
    routes = workdir / "routes.yaml"
    routes.write_text(ROUTES.read_text().replace(ROUTES_UPSTREAM, upstream))
    env = {**os.environ, SECRET_ENV: "sk-bench-upstream"}
    targets = []
    reporting = [
        "--report",
        target,
        "--spool",
        str(workdir / "spool"),
        "--linger",
        str(args.linger),
    ]
    for name, report in (("off", []), ("on", reporting)):
        port = free_port()
        argv = [sys.executable, str(SCRIPT), "sidecar", "--routes", str(routes)]
        argv += ["--port", str(port), *report]
        proc = fleet.start(f"sidecar-{name}", argv, args.measured_core, env)
        url = f"http://127.0.0.1:{port}"
        fleet.wait_ready(f"sidecar-{name}", f"{url}/readyz", timeout_s=60)
        warm_up(url, REQUEST.read_bytes())
        time.sleep(1.0)  # let start-up work (the tokenizer warm-up thread) settle
        targets.append(Target(name, f"{url}/v1/chat/completions", proc.pid, sent=1))
    return Pair(targets[0], targets[1], store)


def sidecar_cost(fleet: Fleet, workdir: Path, args: argparse.Namespace) -> dict[str, Any]:
    loadgen = loadgen_binary(args.go or shutil.which("go") or "/usr/local/go/bin/go")
    upstream = f"http://127.0.0.1:{free_port()}"
    argv = [str(loadgen), "upstream", f"--listen={upstream[7:]}"]
    fleet.start("upstream", argv, args.harness_core)
    fleet.wait_ready("upstream", f"{upstream}/healthz", timeout_s=10)
    pair = start_pair(fleet, workdir, upstream, args)
    fleet.start("spinner", [sys.executable, "-c", SPINNER], args.measured_core)
    plan = Plan(args.rounds, args.latency_requests, 0, args.duration, 16)
    driver = Driver(loadgen, REQUEST, plan)
    for phase in (driver.latency, driver.throughput):
        print(f"running {phase.__name__} ...", file=sys.stderr, flush=True)
        phase((pair.off, pair.on))
    fleet.stop("spinner")
    for name in ("sidecar-off", "sidecar-on", "operator"):  # the reporter flushes on SIGTERM
        fleet.stop(name, grace_s=30)

    def ratio(p: float) -> dict[str, float]:
        off, on = percentile(pair.off.latencies, p), percentile(pair.on.latencies, p)
        return {"off": round(off, 4), "on": round(on, 4), "ratio": round(on / off, 4)}

    cpu_off = pair.off.cpu_s / pair.off.cpu_requests * 1e6
    cpu_on = pair.on.cpu_s / pair.on.cpu_requests * 1e6
    return {
        "latency_ms": {"p50": ratio(0.5), "p99": ratio(0.99)},
        "throughput_rps": {
            "off": round(pair.off.rps),
            "on": round(pair.on.rps),
            "ratio": round(pair.on.rps / pair.off.rps, 4),
            "rounds": {"off": pair.off.round_rps, "on": pair.on.round_rps},
        },
        "cpu_us_per_request": {
            "off": round(cpu_off, 1),
            "on": round(cpu_on, 1),
            "ratio": round(cpu_on / cpu_off, 4),
        },
        "requests_reporting": pair.on.sent,
        "records_stored": count_records(pair.store),
    }


def print_report(figures: dict[str, Any]) -> None:
    cores = figures["cores"]
    print(f"operator ingest on one core (core {cores['measured']}, clients on {cores['harness']}):")
    for shape in figures["ingest"]:
        print(
            f"  {shape['batch']:>3} records/report, {shape['streams']:>2} streams, "
            f"window {shape['window']}: {shape['records_per_s']:>7,} records/s, "
            f"{shape['operator_cpu_us_per_record']:5.1f} us CPU/record "
            f"({shape['stored']:,} stored of {shape['records']:,} acked)"
        )
    side = figures["sidecar"]
    print(
        f"\nsidecar, usage reporting off vs on (both on core {cores['measured']}, "
        f"upstream, operator and load on {cores['harness']}; alternating rounds):"
    )
    rows = [
        ("latency p50, c=1 (ms)", side["latency_ms"]["p50"], "{:.3f}"),
        ("latency p99, c=1 (ms)", side["latency_ms"]["p99"], "{:.3f}"),
        ("throughput, c=16 (req/s)", side["throughput_rps"], "{:,.0f}"),
        ("CPU per request (us)", side["cpu_us_per_request"], "{:.1f}"),
    ]
    for label, cell, fmt in rows:
        off, on = fmt.format(cell["off"]), fmt.format(cell["on"])
        print(f"  {label:<26} {off:>9} {on:>9}   on/off x{cell['ratio']:.3f}")
    print(
        f"  usage records stored by the operator: {side['records_stored']:,} "
        f"for {side['requests_reporting']:,} requests"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    cores = os.sched_getaffinity(0)
    wanted = {args.measured_core, args.harness_core}
    if len(wanted) != 2 or not wanted <= cores:
        raise BenchError(f"need two distinct cores of {sorted(cores)}; see --measured-core")
    os.sched_setaffinity(0, {args.harness_core})
    figures: dict[str, Any] = {
        "cores": {"measured": args.measured_core, "harness": args.harness_core}
    }
    with tempfile.TemporaryDirectory(prefix="sidelight-usage-") as tmp, Fleet(Path(tmp)) as fleet:
        print("running ingest ...", file=sys.stderr, flush=True)
        figures["ingest"] = ingest(fleet, Path(tmp), args)
        figures["sidecar"] = sidecar_cost(fleet, Path(tmp), args)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role")
    operator = sub.add_parser("operator")
    operator.add_argument("--target", required=True)
    operator.add_argument("--store", type=Path, required=True)
    sidecar = sub.add_parser("sidecar")
    sidecar.add_argument("--routes", type=Path, required=True)
    sidecar.add_argument("--port", type=int, required=True)
    sidecar.add_argument("--report", default="")
    sidecar.add_argument("--spool", type=Path, default=None)
    sidecar.add_argument("--linger", type=float, default=LINGER_S)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--ingest-records", type=int, default=100_000, help="per shape")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--latency-requests", type=int, default=2000, help="per sidecar")
    parser.add_argument("--duration", type=float, default=10.0, help="throughput s per sidecar")
    parser.add_argument(
        "--measured-core", type=int, default=0, help="the operator's (1.), the sidecars' (2.)"
    )
    parser.add_argument("--harness-core", type=int, default=1)
    parser.add_argument("--go", help="the go command (default: go on PATH)")
    parser.add_argument(
        "--linger",
        type=float,
        default=LINGER_S,
        help=f"the reporting sidecar's usage batch linger (default {LINGER_S}; 0: none)",
    )
    args = parser.parse_args(argv)
    if args.role == "operator":
        asyncio.run(run_operator(args))
        return 0
    if args.role == "sidecar":
        import uvloop

        uvloop.run(run_sidecar(args))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        figures = run(args)
    except BenchError as exc:
        print(f"usage_bench: {exc}", file=sys.stderr)
        return 1
    print_report(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
