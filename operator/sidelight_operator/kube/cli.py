"""The `sidelight operator` command (also `python -m sidelight_operator`).

`add_operator_command(subparsers)` adds the sub-command to the `sidelight`
parser; `main(argv)` runs it alone. The API server is found as every client
finds it: the pod's service account in a cluster, else $KUBECONFIG (or
~/.kube/config). TLS is required: sidecars send their tokens on this
channel.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from pathlib import Path

from sidelight_operator.inject.options import add_webhook_arguments, build_webhook_options
from sidelight_operator.otlp.options import add_tracing_arguments, build_tracing_options
from sidelight_operator.usage.options import add_usage_arguments, build_usage_options


def add_operator_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add `operator` to a parser's sub-commands; its handler is `args.run`."""
    parser = subparsers.add_parser(
        "operator", help="run the operator against the Kubernetes API (in a cluster)"
    )
    add_operator_arguments(parser)
    return parser


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    """The operator's options, on `parser`."""
    parser.add_argument(
        "--grpc-listen",
        default="0.0.0.0:8443",
        metavar="HOST:PORT",
        help="the ControlPlane gRPC address (default 0.0.0.0:8443)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, required=True, metavar="PEM", help="serving certificate"
    )
    parser.add_argument("--tls-key", type=Path, required=True, metavar="PEM", help="its key")
    parser.add_argument(
        "--health-listen",
        type=host_port,
        default=("0.0.0.0", 8081),
        metavar="HOST:PORT",
        help="/healthz and /readyz (default 0.0.0.0:8081)",
    )
    parser.add_argument(
        "--namespace",
        dest="namespaces",
        metavar="NAMESPACE",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: the whole cluster",
    )
    parser.add_argument(
        "--audience", default="sidelight", help="the audience of sidecar tokens (default sidelight)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO")
    add_webhook_arguments(parser)
    add_usage_arguments(parser)
    add_tracing_arguments(parser)
    parser.set_defaults(run=run_operator_command)


def host_port(value: str) -> tuple[str, int]:
    """`HOST:PORT` (HOST may be empty: all addresses) as a tuple."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)


def run_operator_command(args: argparse.Namespace) -> int:
    """Run the operator with parsed `args` until SIGTERM or SIGINT."""
    # Imported here: kopf and the kubernetes client are the `operator` extra.
    from sidelight_operator.kube.apiclient import build_api_client
    from sidelight_operator.kube.handlers import quiet_kopf_logs
    from sidelight_operator.kube.operator import Operator, OperatorOptions

    level = logging.INFO if args.verbose else logging.WARNING
    # force: `sidelight` may have configured logging before it knew the sub-command.
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    quiet_kopf_logs(level)
    health_host, health_port = args.health_listen
    options = OperatorOptions(
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        grpc_address=args.grpc_listen,
        health_host=health_host,
        health_port=health_port,
        namespaces=tuple(args.namespaces),
        audience=args.audience,
        webhook=build_webhook_options(args),
        usage=build_usage_options(args),
        tracing=build_tracing_options(args, os.environ),
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with build_api_client() as api:
            await Operator(api, options).run(stop)

    asyncio.run(run())
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m sidelight_operator`: the operator alone."""
    parser = argparse.ArgumentParser(
        prog="python -m sidelight_operator", description="The Sidelight operator."
    )
    add_operator_arguments(parser)
    args = parser.parse_args(argv)
    result: int = args.run(args)
    return result
