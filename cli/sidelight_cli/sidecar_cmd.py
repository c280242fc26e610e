"""`sidelight sidecar`: the sidecar of one pod, kept in sync by the operator.

This is the command the admission webhook injects. The sidecar serves on
`--listen` (loopback in a pod) at once: from its persisted snapshot
(`--snapshot-path`, an emptyDir) if it has one, else not ready until the
control plane's first snapshot arrives. Its `ControlPlaneAgent` connects to
`--control-plane` over TLS, trusting the CA in `--ca`, and proves the pod
with the projected service-account token in `--token-file` (read again on
every connect). Identity comes from the pod's environment (SIDELIGHT_POD_*
and SIDELIGHT_SERVICE_ACCOUNT) and labels from `--labels-file`.

Usage records go to the operator over the same connection (ReportUsage),
spooled in `--usage-spool` (default: `usage-spool` next to the snapshot, on
the pod's emptyDir) up to `--usage-spool-bytes`; on SIGTERM the sidecar stops
accepting requests and sends what is left for up to `--usage-flush-timeout`
seconds, keeping the rest on disk for its next start.

Quota budget is leased from the operator over the same connection (Leases),
refilled off the request path; on SIGTERM the leases are closed, returning
what was not spent.

Plain text is allowed to a loopback control plane only: a token must never
cross a network unencrypted.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from sidelight_sidecar.agent import ControlPlaneAgent
from sidelight_sidecar.agent_node import node_from_env
from sidelight_sidecar.server import Sidecar, SidecarOptions
from sidelight_sidecar.usage_spool import DEFAULT_MAX_BYTES


def host_port(value: str) -> tuple[str, int]:
    """HOST:PORT (an empty host is 127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_sidecar_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `sidecar` to the `sidelight` sub-commands (`subparsers` from add_subparsers)."""
    cmd = subparsers.add_parser(
        "sidecar",
        help="run a pod's sidecar, configured by the operator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument(
        "--control-plane",
        type=host_port,
        required=True,
        metavar="HOST:PORT",
        help="the operator's ControlPlane gRPC address",
    )
    cmd.add_argument(
        "--ca", type=Path, default=None, help="PEM CA bundle the operator's certificate chains to"
    )
    cmd.add_argument(
        "--token-file",
        type=Path,
        default=None,
        help="projected service-account token (audience sidelight)",
    )
    cmd.add_argument(
        "--labels-file", type=Path, default=None, help="the pod's labels (a downward-API file)"
    )
    cmd.add_argument("--listen", type=host_port, default=("127.0.0.1", 4000), metavar="HOST:PORT")
    cmd.add_argument(
        "--snapshot-path", type=Path, default=None, help="where the last good snapshot is kept"
    )
    cmd.add_argument("--usage-log", type=Path, default=None, help="JSON-lines usage records")
    cmd.add_argument(
        "--usage-spool",
        type=Path,
        default=None,
        help="directory of usage records not yet acknowledged by the operator "
        "(default: usage-spool next to --snapshot-path, else a temporary one)",
    )
    cmd.add_argument(
        "--usage-spool-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="the spool's size limit; records beyond it are dropped and counted",
    )
    cmd.add_argument(
        "--usage-flush-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="on SIGTERM, how long to keep sending spooled usage records",
    )
    cmd.add_argument("--otlp-endpoint", default=None, help="OTLP/HTTP base URL for traces")


async def run_sidecar(args: argparse.Namespace, stop: asyncio.Event | None = None) -> int:
    """Serve until `stop` is set (default: SIGTERM or SIGINT); 2 for plain text off loopback."""
    host, port = args.control_plane
    if args.ca is None and not _is_loopback(host):
        print(
            f"sidelight sidecar: --ca is required for a control plane off loopback ({host})",
            file=sys.stderr,
        )
        return 2
    listen_host, listen_port = args.listen
    logging.getLogger("sidelight_sidecar.agent").setLevel(logging.INFO)  # its state changes
    sidecar = Sidecar(
        SidecarOptions(
            host=listen_host,
            port=listen_port,
            otlp_endpoint=args.otlp_endpoint,
            usage_path=args.usage_log,
            snapshot_path=args.snapshot_path,
            usage_spool_bytes=args.usage_spool_bytes,
            usage_flush_timeout_s=args.usage_flush_timeout,
        )
    )
    node = node_from_env(labels_path=args.labels_file)
    agent = ControlPlaneAgent(
        sidecar.store, _target(host, port), node, token_path=args.token_file, ca_path=args.ca
    )
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    with ExitStack() as scratch:
        spool = args.usage_spool or (
            args.snapshot_path.parent / "usage-spool"
            if args.snapshot_path is not None
            else Path(scratch.enter_context(tempfile.TemporaryDirectory(prefix="sidelight-")))
        )
        sidecar.report_usage(agent.connection, node, spool)
        sidecar.enforce_quotas(agent.connection, node)
        try:
            await sidecar.start()
            agent.start()
            print(f"sidelight sidecar listening on {sidecar.url}", file=sys.stderr, flush=True)
            await stop.wait()
        finally:
            await agent.stop()
            await sidecar.stop()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
