"""The trace relay's flags of `sidelight operator`, importable without the operator's extra.

`add_tracing_arguments(parser)` adds `--otlp-forward-endpoint` (which turns
the relay on), `--otlp-listen`, `--otlp-queue-bytes` and
`--otlp-queue-batches`; `build_tracing_options(args, environ)` turns them
into `TracingOptions`. Headers for the forward target (a vendor's API key)
come from the environment variable `SIDELIGHT_OTLP_FORWARD_HEADERS`, in the
format of `OTEL_EXPORTER_OTLP_HEADERS` (`name=value,name2=value2`, values
URL-encoded), so that the chart can fill it from a Secret and no key ever
appears on a command line or in a log.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

HEADERS_ENV = "SIDELIGHT_OTLP_FORWARD_HEADERS"
DEFAULT_PORT = 4318
"""The OTLP/HTTP port of the OpenTelemetry specification."""
DEFAULT_QUEUE_BYTES = 32 * 1024 * 1024
DEFAULT_QUEUE_BATCHES = 4096
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""An HTTP header name (RFC 9110 token)."""


@dataclass(frozen=True)
class TracingOptions:
    """Where the relay listens, where it forwards, and how much it holds meanwhile."""

    forward_endpoint: str | None = None
    """OTLP/HTTP base URL of the target (`/v1/traces` is appended); None: no relay."""
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Sent with every forward request; never logged (repr=False)."""
    queue_bytes: int = DEFAULT_QUEUE_BYTES
    queue_batches: int = DEFAULT_QUEUE_BATCHES

    @property
    def enabled(self) -> bool:
        """Whether the operator runs the relay."""
        return bool(self.forward_endpoint)


def add_tracing_arguments(parser: argparse.ArgumentParser) -> None:
    """The relay's options, on `parser`."""
    parser.add_argument(
        "--otlp-forward-endpoint",
        default=None,
        metavar="URL",
        help="receive the sidecars' traces (OTLP/HTTP on --otlp-listen) and forward them to "
        "this OTLP/HTTP base URL (/v1/traces is appended); headers for it come from "
        f"${HEADERS_ENV} (name=value,...); default: no trace relay",
    )
    parser.add_argument(
        "--otlp-listen",
        type=_host_port,
        default=("0.0.0.0", DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"the trace relay's OTLP/HTTP receiver, HTTPS (default 0.0.0.0:{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--otlp-queue-bytes",
        type=_positive_int,
        default=DEFAULT_QUEUE_BYTES,
        metavar="BYTES",
        help="spans held for the forward target at most; beyond, new spans are dropped and "
        f"counted (default {DEFAULT_QUEUE_BYTES})",
    )
    parser.add_argument(
        "--otlp-queue-batches",
        type=_positive_int,
        default=DEFAULT_QUEUE_BATCHES,
        metavar="N",
        help=f"export requests held at most (default {DEFAULT_QUEUE_BATCHES})",
    )


def build_tracing_options(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> TracingOptions:
    """TracingOptions from parsed arguments and the forward headers in `environ`."""
    host, port = args.otlp_listen
    try:
        headers = parse_headers((environ or {}).get(HEADERS_ENV, ""))
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    return TracingOptions(
        forward_endpoint=args.otlp_forward_endpoint or None,
        host=host,
        port=port,
        headers=headers,
        queue_bytes=args.otlp_queue_bytes,
        queue_batches=args.otlp_queue_batches,
    )


def parse_headers(text: str) -> dict[str, str]:
    """`name=value,name2=value2` (values URL-encoded) as a dict; errors never quote a value."""
    headers: dict[str, str] = {}
    for number, item in enumerate(text.split(","), 1):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = unquote(name).strip()
        value = unquote(value).strip()
        if not sep or not _TOKEN.fullmatch(name):
            raise ValueError(f"{HEADERS_ENV}: entry {number} is not name=value")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"{HEADERS_ENV}: the value of {name} has a control character")
        headers[name] = value
    return headers


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)
