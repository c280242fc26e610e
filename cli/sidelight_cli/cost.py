"""`sidelight cost` and `sidelight top`: the usage API of the operator, as tables.

Both read the operator's HTTP JSON API (docs/usage.md): `--url` or
$SIDELIGHT_USAGE_URL, by default the one `sidelight run` serves on
127.0.0.1:4080. In a cluster:

    kubectl -n sidelight-system port-forward svc/sidelight-operator 4080:8080

`--json` prints the API's answer as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

from sidelight_operator.usage.dimensions import DIMENSIONS

DEFAULT_URL = "http://127.0.0.1:4080"
URL_ENV = "SIDELIGHT_USAGE_URL"
TIMEOUT_S = 30.0
SPARKS = "▁▂▃▄▅▆▇█"


class ApiError(Exception):
    """The usage API could not be read; the message says why and what to do."""


def add_cost_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add `cost` and `top` to a parser's sub-commands; their handler is `args.run`."""
    cost = subparsers.add_parser(
        "cost", help="cost and tokens grouped by a dimension, with a trend per day"
    )
    cost.add_argument("--by", required=True, choices=DIMENSIONS, help="the dimension to group by")
    _add_common(cost)
    cost.set_defaults(run=run_cost)
    top = subparsers.add_parser("top", help="the most expensive requests, with their trace ids")
    top.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    _add_common(top)
    top.set_defaults(run=run_top)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="7d", help="a duration back from now (24h, 7d, 2w) or an RFC 3339 time"
    )
    parser.add_argument("--until", default=None, help="like --since; default: now")
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, DEFAULT_URL),
        help=f"the usage API (default ${URL_ENV} or {DEFAULT_URL})",
    )


def fetch(base: str, path: str, params: dict[str, str]) -> Any:
    """GET base+path?params as JSON; ApiError on a refused query or an unreachable API."""
    url = f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        try:
            message = json.load(error).get("error", error.reason)
        except ValueError:
            message = error.reason
        raise ApiError(f"{message} (HTTP {error.code})") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiError(
            f"cannot reach the usage API at {base}: {reason}. Start `sidelight run`, or in a "
            "cluster: kubectl -n <namespace> port-forward svc/<release>-operator 4080:8080"
        ) from None


def sparkline(values: list[float]) -> str:
    """One character per value, scaled to the largest."""
    top = max(values, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * len(SPARKS)))] for v in values)


def usd(value: float) -> str:
    """Dollars with cents, or four significant digits under a cent."""
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4g}"


def table(header: list[str], rows: list[list[str]], right: set[int], out: TextIO) -> None:
    """Columns padded to their widest cell; `right` aligns those columns to the right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        print("  ".join(cells).rstrip(), file=out)


def format_cost(report: dict[str, Any], out: TextIO) -> None:
    """The cost report as a table, a sparkline of cost per day for each group."""
    days: list[str] = report["days"]
    header = [report["by"], "requests", "errors", "input", "output", "cost", "per day"]
    rows = [
        [
            group["key"] or "(none)",
            f"{group['requests']:,}",
            f"{group['errors']:,}",
            f"{group['input_tokens']:,}",
            f"{group['output_tokens']:,}",
            usd(group["cost_usd"]),
            sparkline([day["cost_usd"] for day in group["trend"]]),
        ]
        for group in report["groups"]
    ]
    total = report["total"]
    rows.append(
        [
            "total",
            f"{total['requests']:,}",
            f"{total['errors']:,}",
            f"{total['input_tokens']:,}",
            f"{total['output_tokens']:,}",
            usd(total["cost_usd"]),
            "",
        ]
    )
    print(f"{report['since']} to {report['until']}, per day {days[0]} .. {days[-1]}", file=out)
    table(header, rows, {1, 2, 3, 4, 5}, out)


def format_top(report: dict[str, Any], out: TextIO) -> None:
    """The most expensive requests as a table."""
    header = ["time", "team", "application", "model", "route", "input", "output", "cost"]
    header.append("trace id")
    rows = []
    for request in report["requests"]:
        model = request["served_model"]
        if request["requested_model"] != model:
            model = f"{request['requested_model']} -> {model}"
        rows.append(
            [
                request["time"][:19].replace("T", " "),
                request["team"] or "(none)",
                request["application"] or "(none)",
                model,
                request["route"],
                f"{request['input_tokens']:,}",
                f"{request['output_tokens']:,}",
                usd(request["cost_usd"]),
                request["trace_id"],
            ]
        )
    print(f"{report['since']} to {report['until']}", file=out)
    table(header, rows, {5, 6, 7}, out)


def _range(args: argparse.Namespace) -> dict[str, str]:
    params = {"since": args.since}
    if args.until is not None:
        params["until"] = args.until
    return params


def run_cost(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`sidelight cost`."""
    return _run(args, "/api/v1/usage/cost", {"by": args.by, **_range(args)}, format_cost, out)


def run_top(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`sidelight top`."""
    params = {"limit": str(args.limit), **_range(args)}
    return _run(args, "/api/v1/usage/top", params, format_top, out)


Formatter = Callable[[dict[str, Any], TextIO], None]


def _run(
    args: argparse.Namespace,
    path: str,
    params: dict[str, str],
    show: Formatter,
    out: TextIO | None,
) -> int:
    out = out or sys.stdout
    try:
        report = fetch(args.url, path, params)
    except ApiError as error:
        print(f"sidelight {args.command}: {error}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(report, out, indent=2)
        print(file=out)
    else:
        show(report, out)
    return 0
