"""The proxy benchmark: what the sidecar adds to a call, measured against a direct call.

One run starts a fake OpenAI upstream, an OTLP trace sink and the sidecar
(`sidelight run`, tracing on, usage log on) and drives them with a Go load
generator (bench/loadgen). Every figure is measured twice in the same run,
straight to the upstream and through the sidecar, in alternating rounds so
that machine noise hits both; the report is the difference or the ratio.

The sidecar runs alone on one core; the upstream, the sink, the load
generator and this driver share the other, so the sidecar's request rate is
a rate per core. `--self-test` replaces the sidecar by a second direct target:
every "added" figure should then be about zero, which checks the harness.

    .venv/bin/python bench/proxy_bench.py [--self-test] [--json PATH]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
LOADGEN_DIR = BENCH_DIR / "loadgen"
SIDELIGHT = Path(sys.executable).parent / "sidelight"

TARGET_ADDED_P50_MS = 0.5
TARGET_RPS_PER_CORE = 4000.0
TARGET_RSS_MB = 50.0
# The harness passes its self-test when a direct call "adds" no more than this.
SELF_TEST_MAX_ADDED_P50_MS = 0.05
SELF_TEST_MAX_RPS_SKEW = 0.15

TASK_TYPE = "summarization"
EXPECTED_ROUTE = "cheap-summaries"
# secretRef {name: bench-upstream, key: api-key}, by the rule of docs/standalone-secrets.md.
SECRET_ENV = "SIDELIGHT_SECRET_BENCH_UPSTREAM_API_KEY"
STREAM_CHUNKS = 20
CHUNK_INTERVAL = "250us"  # a gap between chunks, so a proxy that buffers shows in TTFB

ROUTES = BENCH_DIR / "proxy_routes.yaml"
ROUTES_UPSTREAM = "http://127.0.0.1:18081"  # replaced with the upstream's address
REQUEST = BENCH_DIR / "proxy_request.json"  # about 200 cl100k tokens with the chat framing


class BenchError(RuntimeError):
    """The benchmark could not produce trustworthy figures."""


def loadgen_binary(go: str) -> Path:
    """The load generator built from the current sources, building it when missing."""
    digest = hashlib.sha256()
    for path in sorted(LOADGEN_DIR.glob("*")):
        if path.suffix == ".go" or path.name == "go.mod":
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "sidelight" / "bench" / f"loadgen-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.tmp")
    env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
    print(f"building {binary}", file=sys.stderr)
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."], cwd=LOADGEN_DIR, env=env, check=True
    )
    partial.replace(binary)
    return binary


@contextlib.contextmanager
def pinned(core: int) -> Iterator[None]:
    """Run this process on `core` for a while: children started inside inherit it."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def http_get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    """Status and body of a GET; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of `pid`, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile, as bench/loadgen computes it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


class Fleet:
    """The processes of one run, each pinned and logged; all stop on exit, errors included."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)

    def start(
        self, name: str, argv: Sequence[str], core: int, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv` on `core`, its output in WORKDIR/NAME.log."""
        with (self.workdir / f"{name}.log").open("wb") as log, pinned(core):
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> None:
        """Send `sig`, then SIGKILL after `grace_s`."""
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def check(self, name: str) -> None:
        """Raise if `name` has exited."""
        proc = self.procs[name]
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The end of a process's output."""
        text = (self.workdir / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, name: str, url: str, timeout_s: float) -> None:
        """Poll `url` until it answers 200 or `name` exits."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check(name)
            if http_get(url)[0] == 200:
                return
            time.sleep(0.05)
        raise BenchError(f"{name} not ready at {url} in {timeout_s:.0f}s:\n{self.log_tail(name)}")


@dataclass
class Target:
    """Where one side of the comparison sends its requests, and what it measured."""

    label: str
    url: str
    pid: int | None = None  # the sidecar's, for RSS and CPU
    latencies: list[float] = field(default_factory=list)
    ttfbs: list[float] = field(default_factory=list)
    count: int = 0
    elapsed_s: float = 0.0
    round_rps: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the sidecar's, over the throughput phases, warm-ups included
    cpu_requests: int = 0
    rss_peak_kb: int = 0
    sent: int = 0  # requests sent, warm-ups included

    @property
    def rps(self) -> float:
        """Requests per second over all throughput phases."""
        return self.count / self.elapsed_s if self.elapsed_s else 0.0


@dataclass(frozen=True)
class Plan:
    """How much to measure, per target, split evenly over the rounds."""

    rounds: int
    latency_requests: int
    stream_requests: int
    duration_s: float
    concurrency: int


@dataclass(frozen=True)
class Driver:
    """Runs the load generator against the targets, phase by phase, round by round."""

    loadgen: Path
    body: Path
    plan: Plan

    def load(
        self, target: Target, args: Sequence[str], warmup: int, watch: bool = False
    ) -> dict[str, Any]:
        """One loadgen run, failing on any error; with `watch`, track the target's peak RSS."""
        argv = [str(self.loadgen), "load", f"--url={target.url}", f"--body={self.body}"]
        argv += [f"--warmup={warmup}", f"--header=x-sidelight-task-type: {TASK_TYPE}", *args]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120 + self.plan.duration_s
        try:
            while True:
                try:
                    out, err = proc.communicate(timeout=0.02)
                    break
                except subprocess.TimeoutExpired:
                    if time.monotonic() > deadline:
                        raise BenchError(f"loadgen {' '.join(args)} did not finish") from None
                    if watch and target.pid is not None:
                        rss = proc_status(target.pid).get("VmRSS", 0)
                        target.rss_peak_kb = max(target.rss_peak_kb, rss)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise BenchError(f"loadgen failed: {err.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(out)
        target.sent += warmup + result["count"] + result["errors"]
        if result["errors"] or result["non_2xx"]:
            raise BenchError(
                f"{target.label} {' '.join(args)}: {result['errors']} errors "
                f"({result.get('first_error', '')}), non-2xx {result['non_2xx']}"
            )
        return result

    def rounds(self, targets: Sequence[Target]) -> Iterator[Target]:
        """The targets of every round in turn, the order flipped every round."""
        for r in range(self.plan.rounds):
            yield from targets if r % 2 == 0 else reversed(targets)

    def latency(self, targets: Sequence[Target]) -> None:
        """Non-streaming calls one at a time."""
        n = max(1, self.plan.latency_requests // self.plan.rounds)
        for t in self.rounds(targets):
            result = self.load(t, ["--concurrency=1", f"--requests={n}", "--raw"], warmup=200)
            t.latencies += result["latencies_ms"]

    def streaming(self, targets: Sequence[Target]) -> None:
        """Streamed calls one at a time; time to the first body byte."""
        n = max(1, self.plan.stream_requests // self.plan.rounds)
        for t in self.rounds(targets):
            args = ["--concurrency=1", f"--requests={n}", "--stream", "--raw"]
            t.ttfbs += self.load(t, args, warmup=50)["ttfbs_ms"]

    def throughput(self, targets: Sequence[Target]) -> None:
        """Closed loops at the plan's concurrency for a fixed time; the sidecar's RSS and CPU."""
        seconds = self.plan.duration_s / self.plan.rounds
        warmup = 200
        for t in self.rounds(targets):
            args = [f"--concurrency={self.plan.concurrency}", f"--duration={seconds}s"]
            cpu_before = cpu_seconds(t.pid) if t.pid is not None else 0.0
            result = self.load(t, args, warmup=warmup, watch=True)
            if t.pid is not None:
                t.cpu_s += cpu_seconds(t.pid) - cpu_before
                t.cpu_requests += warmup + result["count"]
            t.count += result["count"]
            t.elapsed_s += result["elapsed_s"]
            t.round_rps.append(round(result["rps"]))


@dataclass(frozen=True)
class Sidecar:
    """The sidecar under test, and where its telemetry goes."""

    url: str
    pid: int
    sink: str
    usage_log: Path
    idle_rss_kb: int


def start_sidecar(
    fleet: Fleet, loadgen: Path, workdir: Path, upstream: str, args: argparse.Namespace
) -> Sidecar:
    """Start the OTLP sink and `sidelight run` on the bench routes; warm up; measure idle RSS."""
    if not SIDELIGHT.exists():
        raise BenchError(f"{SIDELIGHT} not found: run `make setup`")
    sink = f"http://127.0.0.1:{free_port()}"
    fleet.start("otlp-sink", [str(loadgen), "otlp-sink", f"--listen={sink[7:]}"], args.harness_core)
    fleet.wait_ready("otlp-sink", f"{sink}/stats", timeout_s=10)
    routes = workdir / "routes.yaml"
    routes.write_text(ROUTES.read_text().replace(ROUTES_UPSTREAM, upstream))
    url = f"http://127.0.0.1:{free_port()}"
    usage_log = workdir / "usage.jsonl"
    argv = [str(SIDELIGHT), "run", "-f", str(routes), "--listen", url[7:]]
    argv += ["--usage-log", str(usage_log), "--otlp-endpoint", sink]
    env = {**os.environ, SECRET_ENV: "sk-bench-upstream"}
    proc = fleet.start("sidecar", argv, args.sidecar_core, env)
    fleet.wait_ready("sidecar", f"{url}/readyz", timeout_s=60)
    warm_up(url, REQUEST.read_bytes())
    time.sleep(1.0)  # let start-up work (the tokenizer warm-up thread) settle
    idle = proc_status(proc.pid)["VmRSS"]
    return Sidecar(url, proc.pid, sink, usage_log, idle)


def warm_up(url: str, body: bytes) -> None:
    """One request through the sidecar; check that the intended route served it."""
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=body,
        headers={"content-type": "application/json", "x-sidelight-task-type": TASK_TYPE},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            route = response.headers.get("x-sidelight-route")
            response.read()
    except urllib.error.HTTPError as exc:
        raise BenchError(f"warm-up request: {exc.code} {exc.read()!r}") from exc
    if route != EXPECTED_ROUTE:
        raise BenchError(f"warm-up request took route {route!r}, not {EXPECTED_ROUTE!r}")


def sidecar_figures(fleet: Fleet, sidecar: Sidecar, via: Target) -> dict[str, Any]:
    """Stop the sidecar (which flushes its spans and usage records) and report on it."""
    hwm = proc_status(sidecar.pid)["VmHWM"]
    fleet.stop("sidecar", grace_s=15)
    status, stats = http_get(f"{sidecar.sink}/stats")
    if status != 200:
        raise BenchError("the OTLP sink did not answer")
    log = sidecar.usage_log
    return {
        "cpu_us_per_request": round(via.cpu_s / via.cpu_requests * 1e6, 1),
        "rss_idle_mb": round(sidecar.idle_rss_kb / 1024, 1),
        "rss_load_peak_mb": round(via.rss_peak_kb / 1024, 1),
        "vm_hwm_mb": round(hwm / 1024, 1),
        "requests_sent": via.sent,
        "usage_records": len(log.read_bytes().splitlines()) if log.exists() else 0,
        "otlp": json.loads(stats),
    }


def find_py_spy() -> str:
    """py-spy on PATH or next to this Python."""
    found = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy")
    if not Path(found).exists():
        raise BenchError("--profile needs py-spy on PATH: pip install py-spy")
    return str(found)


@contextlib.contextmanager
def profiled(fleet: Fleet, py_spy: str, out: Path | None, pid: int, core: int) -> Iterator[None]:
    """Sample the sidecar with py-spy meanwhile, as collapsed stacks in `out`.

    `--nonblocking` never pauses the sidecar and `--gil` samples only the thread
    that holds the GIL, so time spent waiting on sockets is not counted.
    """
    if out is None:
        yield
        return
    argv = [py_spy, "record", f"--pid={pid}", "--rate=250", "--nonblocking", "--gil", "--function"]
    fleet.start("py-spy", [*argv, "--format=raw", f"--output={out.resolve()}"], core)
    try:
        yield
    finally:
        fleet.stop("py-spy", grace_s=30, sig=signal.SIGINT)  # py-spy writes on SIGINT


def top_frames(
    folded: Path, n: int
) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """Samples, and the `n` busiest functions by self time and by inclusive time (shares)."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] = own.get(frames[-1], 0) + int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)

    def top(counts: dict[str, int]) -> list[tuple[str, float]]:
        return [(f, c / total) for f, c in sorted(counts.items(), key=lambda i: -i[1])[:n]]

    return total, top(own), top(inclusive)


def compare(direct: Sequence[float], via: Sequence[float]) -> dict[str, dict[str, float]]:
    """p50 and p99 of both sample sets, and what the second adds."""
    out = {}
    for p in (50, 99):
        d, v = percentile(direct, p / 100), percentile(via, p / 100)
        out[f"p{p}"] = {"direct": round(d, 4), "sidecar": round(v, 4), "added": round(v - d, 4)}
    return out


def summarize(direct: Target, via: Target) -> dict[str, Any]:
    """The figures that compare the two targets."""
    return {
        "latency_ms": compare(direct.latencies, via.latencies),
        "stream_ttfb_ms": compare(direct.ttfbs, via.ttfbs),
        "throughput_rps": {
            "direct": round(direct.rps),
            "sidecar": round(via.rps),
            "ratio": round(via.rps / direct.rps, 4),
            "rounds": {"direct": direct.round_rps, "sidecar": via.round_rps},
        },
    }


def table_rows(figures: dict[str, Any]) -> list[tuple[str, ...]]:
    """(figure, direct, sidecar, added, target, verdict) rows; no targets in a self-test."""
    self_test = figures["mode"] == "self-test"

    def goal(target: str, ok: bool) -> tuple[str, str]:
        return ("", "") if self_test else (target, "ok" if ok else "MISS")

    rows: list[tuple[str, ...]] = []
    for name, key in (("latency", "latency_ms"), ("stream TTFB", "stream_ttfb_ms")):
        for p, f in figures[key].items():
            cells = (f"{f['direct']:.3f}", f"{f['sidecar']:.3f}", f"{f['added']:+.3f}")
            target = ("", "")
            if key == "latency_ms" and p == "p50":
                target = goal(f"added <= {TARGET_ADDED_P50_MS}", f["added"] <= TARGET_ADDED_P50_MS)
            rows.append((f"{name} {p}, c=1 (ms)", *cells, *target))
    tp = figures["throughput_rps"]
    rps_goal = goal(f">= {TARGET_RPS_PER_CORE:,.0f}/core", tp["sidecar"] >= TARGET_RPS_PER_CORE)
    rows.append(
        (
            f"throughput, c={figures['plan']['concurrency']} (req/s)",
            *(f"{tp['direct']:,}", f"{tp['sidecar']:,}", f"x{tp['ratio']:.3f}"),
            *rps_goal,
        )
    )
    sidecar = figures.get("sidecar")
    if sidecar is None:
        return rows
    budget_us = 1e6 / TARGET_RPS_PER_CORE
    cpu = sidecar["cpu_us_per_request"]
    cpu_goal = goal(f"<= {budget_us:.0f}", cpu <= budget_us)
    rows.append(("sidecar CPU per request (us)", "", f"{cpu:.0f}", "", *cpu_goal))
    for label, key in (("RSS idle", "rss_idle_mb"), ("RSS under load, peak", "rss_load_peak_mb")):
        rss_goal = goal(f"<= {TARGET_RSS_MB:.0f}", sidecar[key] <= TARGET_RSS_MB)
        rows.append((f"{label} (MB)", "", f"{sidecar[key]:.1f}", "", *rss_goal))
    rows.append(("VmHWM, lifetime peak (MB)", "", f"{sidecar['vm_hwm_mb']:.1f}", "", "", ""))
    return rows


def print_report(figures: dict[str, Any], profile: Path | None) -> None:
    """Where things ran, the table, the telemetry counts, and the profile if one was taken."""
    cores, load = figures["cores"], figures["loadavg_1m"]
    self_test = figures["mode"] == "self-test"
    where = (
        f"self-test, direct vs direct, all on core {cores['harness']}"
        if self_test
        else f"sidecar on core {cores['sidecar']}; upstream, OTLP sink and load generator "
        f"on core {cores['harness']}"
    )
    print(f"{where}; {figures['plan']['rounds']} alternating rounds; ", end="")
    print(f"load average {load['start']:.2f} -> {load['end']:.2f}\n")
    header = ("figure", "direct", "direct again" if self_test else "sidecar", "added", "target")
    rows = [(*header, ""), *table_rows(figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, row in enumerate(rows):
        line = [row[0].ljust(widths[0])]
        line += [c.rjust(w) for c, w in zip(row[1:5], widths[1:], strict=True)]
        print("  ".join([*line, row[5]]).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    sidecar = figures.get("sidecar")
    if sidecar is not None:
        otlp, sent = sidecar["otlp"], sidecar["requests_sent"]
        print(
            f"\ntracing: {otlp['spans']:,} spans in {otlp['requests']:,} OTLP exports "
            f"({otlp['spans'] / max(1, sent):.2f} per request); "
            f"usage log: {sidecar['usage_records']:,} records for {sent:,} requests"
        )
    if profile is not None:
        samples, own, inclusive = top_frames(profile, 25)
        for kind, frames in (("self", own), ("inclusive", inclusive)):
            print(f"\nsidecar profile, {kind} time, of {samples:,} samples holding the GIL:")
            for frame, share in frames:
                print(f"  {share:6.1%}  {frame}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, measure, stop everything; the figures."""
    cores = os.sched_getaffinity(0)
    if (
        not {args.sidecar_core, args.harness_core} <= cores
        or args.sidecar_core == args.harness_core
    ):
        raise BenchError(f"need two distinct cores of {sorted(cores)}; see --sidecar-core")
    py_spy = find_py_spy() if args.profile else ""
    loadgen = loadgen_binary(args.go or shutil.which("go") or "/usr/local/go/bin/go")
    os.sched_setaffinity(0, {args.harness_core})  # the load generator inherits it
    plan = Plan(args.rounds, args.latency_requests, args.stream_requests, args.duration, 16)
    figures: dict[str, Any] = {"mode": "self-test" if args.self_test else "sidecar"}
    figures["loadavg_1m"] = {"start": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="sidelight-bench-") as tmp, Fleet(Path(tmp)) as fleet:
        workdir = Path(tmp)
        upstream = f"http://127.0.0.1:{free_port()}"
        argv = [str(loadgen), "upstream", f"--listen={upstream[7:]}"]
        argv += [f"--chunks={STREAM_CHUNKS}", f"--chunk-interval={CHUNK_INTERVAL}"]
        fleet.start("upstream", argv, args.harness_core)
        fleet.wait_ready("upstream", f"{upstream}/healthz", timeout_s=10)
        direct = Target("direct", f"{upstream}/v1/chat/completions")
        sidecar = None
        if args.self_test:
            via = Target("direct again", direct.url)
        else:
            sidecar = start_sidecar(fleet, loadgen, workdir, upstream, args)
            via = Target("sidecar", f"{sidecar.url}/v1/chat/completions", sidecar.pid, sent=1)
        driver = Driver(loadgen, REQUEST, plan)
        for phase in (driver.latency, driver.streaming, driver.throughput):
            print(f"running {phase.__name__} ...", file=sys.stderr, flush=True)
            if sidecar is None:
                phase((direct, via))
                continue
            profile = args.profile if phase == driver.throughput else None
            with profiled(fleet, py_spy, profile, sidecar.pid, args.harness_core):
                phase((direct, via))
            fleet.check("sidecar")
        figures.update(summarize(direct, via))
        if sidecar is not None:
            figures["sidecar"] = sidecar_figures(fleet, sidecar, via)
    figures["loadavg_1m"]["end"] = os.getloadavg()[0]
    figures["plan"] = plan.__dict__
    figures["cores"] = {"sidecar": args.sidecar_core, "harness": args.harness_core}
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="direct vs direct: checks bias")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--latency-requests", type=int, default=2000, help="per target")
    parser.add_argument("--stream-requests", type=int, default=1000, help="per target")
    parser.add_argument("--duration", type=float, default=10.0, help="throughput s per target")
    parser.add_argument("--sidecar-core", type=int, default=0)
    parser.add_argument("--harness-core", type=int, default=1)
    parser.add_argument("--go", help="the go command (default: go on PATH)")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="sample the sidecar with py-spy in the throughput phases; collapsed stacks to FILE",
    )
    args = parser.parse_args(argv)
    if args.profile and args.self_test:
        parser.error("--profile profiles the sidecar; there is none with --self-test")
    # SIGTERM unwinds like Ctrl-C, so every process this run started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        figures = run(args)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"proxy_bench: {exc}", file=sys.stderr)
        return 1
    print_report(figures, args.profile)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.self_test:
        skew = abs(figures["throughput_rps"]["ratio"] - 1)
        bias = abs(figures["latency_ms"]["p50"]["added"])
        ok = bias <= SELF_TEST_MAX_ADDED_P50_MS and skew <= SELF_TEST_MAX_RPS_SKEW
        print(
            f"\nself-test {'passed' if ok else 'FAILED'}: added p50 {bias:.3f} ms "
            f"(<= {SELF_TEST_MAX_ADDED_P50_MS}), throughput skew {skew:.1%} "
            f"(<= {SELF_TEST_MAX_RPS_SKEW:.0%})"
        )
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
