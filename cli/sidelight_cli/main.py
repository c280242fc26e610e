"""Entry point of the `sidelight` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from sidelight_cli.cost import add_cost_commands
from sidelight_cli.inject_cmd import add_inject_command
from sidelight_cli.sidecar_cmd import add_sidecar_command, run_sidecar
from sidelight_operator.kube.cli import add_operator_command
from sidelight_operator.usage.options import UsageOptions
from sidelight_sidecar.server import Sidecar, SidecarOptions


def _address(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "127.0.0.1", int(port)


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="sidelight", description="Sidelight: a Kubernetes-native LLM proxy."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="serve LLMRoute, Guardrail and LLMQuota files locally (standalone mode)",
        description="Standalone mode: the operator's control plane over files, and a sidecar "
        "connected to it over the same gRPC protocol as in a cluster. The control plane "
        "listens on a free 127.0.0.1 port in plain text (no TLS) and checks no token: it "
        "accepts loopback peers only and trusts what they claim. See docs/control-plane.md.",
    )
    run.add_argument(
        "-f",
        "--file",
        dest="files",
        type=Path,
        action="append",
        required=True,
        help="a YAML file or directory of resources (repeatable)",
    )
    run.add_argument("--listen", type=_address, default=("127.0.0.1", 4000), metavar="HOST:PORT")
    run.add_argument(
        "--secrets-dir",
        type=Path,
        default=None,
        help="directory of <secret-name>/<key> files for secretRefs "
        "(env SIDELIGHT_SECRET_<NAME>_<KEY> wins)",
    )
    run.add_argument("--usage-log", type=Path, default=Path(".sidelight/usage.jsonl"))
    run.add_argument("--otlp-endpoint", default=None, help="OTLP/HTTP base URL for traces")
    run.add_argument(
        "--usage-listen",
        type=_address,
        default=("127.0.0.1", 4080),
        metavar="HOST:PORT",
        help="the usage API and page, read by `sidelight cost` (default 127.0.0.1:4080)",
    )
    run.add_argument(
        "--usage-store",
        type=Path,
        default=Path(".sidelight/usage.db"),
        help="the usage database (SQLite; default .sidelight/usage.db)",
    )

    fake = commands.add_parser("fake-provider", help="a fake OpenAI/Anthropic provider")
    fake.add_argument("--listen", type=_address, default=("127.0.0.1", 18080), metavar="HOST:PORT")

    commands.add_parser("demo", help="a one-minute tour with a fake provider")
    add_sidecar_command(commands)
    add_operator_command(commands)
    add_inject_command(commands)
    add_cost_commands(commands)
    return parser


async def _run(args: argparse.Namespace) -> int:
    from sidelight_cli.standalone import FileSource, Standalone
    from sidelight_operator.usage import UsageService

    host, port = args.listen
    sidecar = Sidecar(
        SidecarOptions(
            host=host, port=port, otlp_endpoint=args.otlp_endpoint, usage_path=args.usage_log
        )
    )
    usage_host, usage_port = args.usage_listen
    usage = UsageService(UsageOptions(usage_host, usage_port, args.usage_store))
    standalone = Standalone(FileSource(args.files, args.secrets_dir), sidecar, usage)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await standalone.start()
        print(f"sidelight listening on {sidecar.url}", file=sys.stderr, flush=True)
        print(
            f"usage: http://{usage_host}:{usage.port}/ (sidelight cost, sidelight top)",
            file=sys.stderr,
            flush=True,
        )
        await standalone.source.watch(stop)
    finally:
        await standalone.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the `sidelight` command line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "run":
        return _run_loop(_run(args))
    if args.command == "sidecar":
        return _run_loop(run_sidecar(args))
    if args.command in ("operator", "inject", "cost", "top"):
        result: int = args.run(args)
        return result
    if args.command == "fake-provider":
        from sidelight_fake_provider.server import main_listen

        main_listen(*args.listen)
        return 0
    from sidelight_cli.demo import run_demo

    return run_demo()


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    import uvloop

    return uvloop.run(coro)


if __name__ == "__main__":
    sys.exit(main())
