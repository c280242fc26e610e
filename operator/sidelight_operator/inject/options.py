"""The webhook's command-line options, importable without the operator's dependencies.

`add_webhook_arguments(parser)` adds `--webhook-listen`,
`--injection-config` and `--control-plane-ca` to the operator's parser;
`build_webhook_options(args)` turns them (and the operator's `--tls-cert`
and `--tls-key`: one serving certificate for the ControlPlane and the
webhook) into `WebhookOptions`, or None when no webhook is asked for. The
`sidelight` parser imports this in images without kopf and the kubernetes
client, so it imports neither.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WebhookOptions:
    """Where the webhook listens, its configuration and its certificate."""

    host: str
    port: int
    config_path: Path
    ca_path: Path | None
    tls_cert: Path
    tls_key: Path


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    """The webhook's options (its certificate is the operator's --tls-cert/--tls-key)."""
    parser.add_argument(
        "--webhook-listen",
        type=_host_port,
        default=None,
        metavar="HOST:PORT",
        help="serve the sidecar injection webhook here (HTTPS, POST /mutate-pods); "
        "default: no webhook",
    )
    parser.add_argument(
        "--injection-config",
        type=Path,
        default=None,
        metavar="YAML",
        help="what the webhook injects (the chart's `injection` values)",
    )
    parser.add_argument(
        "--control-plane-ca",
        type=Path,
        default=None,
        metavar="PEM",
        help="the CA of the serving certificate, which injected sidecars trust",
    )


def build_webhook_options(args: argparse.Namespace) -> WebhookOptions | None:
    """WebhookOptions from parsed arguments (with --tls-cert and --tls-key); None if off."""
    if args.webhook_listen is None:
        return None
    if args.injection_config is None:
        raise SystemExit("--webhook-listen needs --injection-config")
    host, port = args.webhook_listen
    return WebhookOptions(
        host, port, args.injection_config, args.control_plane_ca, args.tls_cert, args.tls_key
    )


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)
