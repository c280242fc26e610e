"""The usage options of `sidelight operator`, importable without the operator's dependencies.

`add_usage_arguments(parser)` adds `--usage-listen`, `--usage-store`,
`--usage-retention-days` and `--metrics-label-cap`; `build_usage_options(args)`
turns them into `UsageOptions`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from sidelight_operator.usage.metrics import DEFAULT_LABEL_CAP

DEFAULT_PORT = 8080
DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class UsageOptions:
    """Where the usage API listens, where the store lives, how long records stay."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    store_path: Path | None = None
    """The SQLite file; None: in memory, lost at exit."""
    retention_days: float = DEFAULT_RETENTION_DAYS
    label_cap: int = DEFAULT_LABEL_CAP


def add_usage_arguments(parser: argparse.ArgumentParser) -> None:
    """The usage API's and store's options, on `parser`."""
    parser.add_argument(
        "--usage-listen",
        type=_host_port,
        default=("0.0.0.0", DEFAULT_PORT),
        metavar="HOST:PORT",
        help=f"the usage API, web page and /metrics (default 0.0.0.0:{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--usage-store",
        type=Path,
        default=None,
        metavar="FILE",
        help="the usage database (SQLite, on a volume); default: in memory, lost at exit",
    )
    parser.add_argument(
        "--usage-retention-days",
        type=_positive_float,
        default=DEFAULT_RETENTION_DAYS,
        metavar="DAYS",
        help="keep each usage record this long; hourly rollups stay longer "
        f"(default {DEFAULT_RETENTION_DAYS})",
    )
    parser.add_argument(
        "--metrics-label-cap",
        type=_positive_int,
        default=DEFAULT_LABEL_CAP,
        metavar="N",
        help="distinct values per metric label before new ones are reported as 'other' "
        f"(default {DEFAULT_LABEL_CAP})",
    )


def build_usage_options(args: argparse.Namespace) -> UsageOptions:
    """UsageOptions from parsed arguments."""
    host, port = args.usage_listen
    return UsageOptions(
        host=host,
        port=port,
        store_path=args.usage_store,
        retention_days=args.usage_retention_days,
        label_cap=args.metrics_label_cap,
    )


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host or "0.0.0.0", int(port)


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value!r}")
    return number


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return int(value)
