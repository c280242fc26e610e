"""Standalone mode: the operator's control plane over files, and a sidecar connected to it.

`sidelight run -f DIR` is the cluster's path on one machine: the file source
compiles the YAML with the operator's pure compile step and hands the
snapshot to a control-plane `Hub`, served over gRPC on a free 127.0.0.1 port;
a sidecar in the same process connects to it with its `ControlPlaneAgent`,
applies the snapshot and ACKs or NACKs it, as in a pod. Neither package
imports the other; they meet here and on the wire.

On loopback there is no TLS and no token check (`LoopbackAuthenticator`):
the port takes loopback peers only, and the one sidecar is in this process.

When a file changes the resources are compiled again; a version with errors
is printed (resource and field) and not pushed, so the last good one keeps
serving. "serving version ..." is printed once the sidecar has ACKed it.
The one sidecar gets every resource in the files, whatever its namespace.

LLMQuota files are enforced with the cluster's lease logic: the control
plane's ledger lends budget to the local sidecar over the same loopback
port (kept next to the usage store when there is one), and a threshold
crossed is printed, and posted to the quota's webhook, whose URL comes from
SIDELIGHT_SECRET_<NAME>_<KEY> or --secrets-dir. The scope's team,
application and environment are the sidecar's (SIDELIGHT_TEAM, ...).

With a `UsageService`, the control plane's ReportUsage writes into its store
(the records' identity kept as the local sidecar claims it) and the usage
API, page and `/metrics` are served on loopback, as the operator serves them
in a cluster: `sidelight cost` and `sidelight top` read them. The sidecar
reports to it as in a pod, through a spool in `usage-spool` next to the
store (a temporary directory for a store in memory).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import watchfiles
from prometheus_client import CollectorRegistry

from sidelight_operator.compile import Diagnostic, compile_snapshot
from sidelight_operator.controlplane import (
    ControlPlaneServer,
    Hub,
    LoopbackAuthenticator,
    PodRef,
    UsageReporting,
    serve,
)
from sidelight_operator.quota.service import QuotaService, ledger_path
from sidelight_operator.standalone import env_name, load_resources, resolve_secrets
from sidelight_operator.usage import UsageService
from sidelight_proto.v1 import control_plane_pb2, snapshot_pb2
from sidelight_sidecar.agent import ControlPlaneAgent, ControlPlaneConnection
from sidelight_sidecar.agent_node import node_from_env
from sidelight_sidecar.retry import Backoff
from sidelight_sidecar.server import Sidecar

LOOPBACK = "127.0.0.1"
FIRST_ANSWER_TIMEOUT_S = 30.0
LOOPBACK_RECONNECT = Backoff(base_s=0.05, max_s=1.0)


def format_diagnostic(d: Diagnostic) -> str:
    """One line a person can act on: resource, field, message."""
    where = f"{d.kind} {d.namespace}/{d.name}" if d.name else d.kind
    return (
        f"{d.severity}: {where}: {d.field}: {d.message}"
        if d.field
        else f"{d.severity}: {where}: {d.message}"
    )


def compile_files(
    paths: Sequence[Path], secrets_dir: Path | None
) -> tuple[snapshot_pb2.Snapshot, list[Diagnostic]]:
    """Load, resolve secrets and compile the resources under `paths`."""
    resources, load_diagnostics = load_resources(paths)
    resources = [*resources, *resolve_secrets(resources, os.environ, secrets_dir)]
    result = compile_snapshot(resources)
    return result.snapshot, [*load_diagnostics, *result.diagnostics]


class FileSource:
    """Compiles files into the control plane's snapshot, now and whenever they change."""

    def __init__(
        self,
        paths: Sequence[Path],
        secrets_dir: Path | None = None,
        out: TextIO = sys.stderr,
        debounce_s: float = 0.1,
    ) -> None:
        self.paths = list(paths)
        self.secrets_dir = secrets_dir
        self.out = out
        self.snapshot: snapshot_pb2.Snapshot | None = None
        self.hub = Hub(self.snapshot_for, debounce_s)
        self.hub.listeners.append(self._report)
        self.answered = asyncio.Event()  # the sidecar ACKed or NACKed a version
        self._reported = ""

    def load(self) -> bool:
        """Compile and push; with errors, push only when nothing was pushed yet."""
        snapshot, diagnostics = compile_files(self.paths, self.secrets_dir)
        for d in diagnostics:
            self._print(format_diagnostic(d))
        if self.snapshot is not None and any(d.severity == "error" for d in diagnostics):
            self._print(f"configuration not applied; still serving version {self.snapshot.version}")
            return False
        self.snapshot = snapshot
        self.hub.notify_changed()
        return True

    def snapshot_for(self, pod: PodRef) -> snapshot_pb2.Snapshot:
        """Every resource in the files, whatever the pod: standalone has one sidecar."""
        if self.snapshot is None:
            raise LookupError("the files have not been compiled yet")
        return self.snapshot

    async def watch(self, stop: asyncio.Event) -> None:
        """Recompile on every change under the paths until `stop` is set."""
        async for _ in watchfiles.awatch(*self.paths, stop_event=stop, debounce=100):
            self.load()

    def _report(self) -> None:
        for state in self.hub.sidecars():
            if state.rejecting and state.nack is not None:
                if state.nack.version != self._reported:
                    self._reported = state.nack.version
                    self._print(f"configuration refused by the sidecar: {state.nack.reason}")
                self.answered.set()
            elif state.synced and state.acked_snapshot is not None:
                if state.acked_version != self._reported:
                    self._reported = state.acked_snapshot.version
                    self._print(_serving(state.acked_snapshot))
                self.answered.set()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)


class Standalone:
    """The file source's control plane on loopback and `sidecar` connected to it."""

    def __init__(
        self, source: FileSource, sidecar: Sidecar, usage: UsageService | None = None
    ) -> None:
        self.source = source
        self.sidecar = sidecar
        self.usage = usage
        self.agent: ControlPlaneAgent | None = None
        self.quotas = QuotaService(
            ledger_path(usage.options.store_path) if usage is not None else None,
            usage.registry if usage is not None else CollectorRegistry(),
            lambda pod: source.snapshot_for(pod).quotas,
            lambda _, name, key: standalone_secret(name, key, source.secrets_dir),
            trust_scope=True,
            print_line=lambda line: print(line, file=source.out, flush=True),
        )
        self._server: ControlPlaneServer | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    async def start(self) -> None:
        """Compile, serve the control plane, start the sidecar; return once it answered."""
        self.source.load()
        reporting = None
        if self.usage is not None:
            await self.usage.start()
            reporting = UsageReporting(self.usage.store, trust_records=True)
        self._server = await serve(
            self.source.hub,
            LoopbackAuthenticator(),
            f"{LOOPBACK}:0",
            usage=reporting,
            leases=self.quotas.lending,
        )
        await self.quotas.start()
        target, node = f"{LOOPBACK}:{self._server.port}", standalone_node()
        self.sidecar.enforce_quotas(
            ControlPlaneConnection(target), node, backoff=LOOPBACK_RECONNECT
        )
        if self.usage is not None:
            connection = ControlPlaneConnection(target)
            spool = self._spool_dir(self.usage.options.store_path)
            self.sidecar.report_usage(connection, node, spool, backoff=LOOPBACK_RECONNECT)
        await self.sidecar.start()
        self.agent = ControlPlaneAgent(self.sidecar.store, target, node, backoff=LOOPBACK_RECONNECT)
        self.agent.start()
        try:
            await asyncio.wait_for(self.source.answered.wait(), FIRST_ANSWER_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(
                f"the sidecar got no configuration from the local control plane "
                f"({self.agent.last_error or 'no answer'})"
            ) from None

    async def stop(self) -> None:
        """Stop the agent, the sidecar and the control plane."""
        if self.agent is not None:
            await self.agent.stop()
        await self.sidecar.stop()
        if self._server is not None:
            await self._server.stop(None)
        await self.quotas.stop()
        if self.usage is not None:
            await self.usage.stop()
        if self._scratch is not None:
            self._scratch.cleanup()

    def _spool_dir(self, store_path: Path | None) -> Path:
        if store_path is not None:
            return store_path.parent / "usage-spool"
        self._scratch = tempfile.TemporaryDirectory(prefix="sidelight-usage-")
        return Path(self._scratch.name)


def standalone_secret(name: str, key: str, secrets_dir: Path | None) -> str | None:
    """A Secret's value for a quota webhook: SIDELIGHT_SECRET_<NAME>_<KEY>, else the file."""
    value = os.environ.get(env_name(name, key))
    if value or secrets_dir is None:
        return value or None
    path = secrets_dir / name / key
    return path.read_text().strip() if path.is_file() else None


def standalone_node() -> control_plane_pb2.Node:
    """The node the local sidecar claims: the pod environment if set, else `default/standalone`."""
    node = node_from_env()
    node.namespace = node.namespace or "default"
    node.pod = node.pod or "standalone"
    return node


def _serving(snapshot: snapshot_pb2.Snapshot) -> str:
    routes = sum(len(rs.routes) for rs in snapshot.route_sets)
    return (
        f"serving version {snapshot.version}: {len(snapshot.route_sets)} LLMRoute(s), "
        f"{routes} route(s), {len(snapshot.guardrails)} Guardrail(s), "
        f"{len(snapshot.quotas)} LLMQuota(s)"
    )
