"""Queries over the usage store: cost by a dimension, the most expensive requests, rates.

A time range is [since, until) in seconds since the epoch, cut in pieces:
whole UTC days inside it are read from the daily rollups, whole hours at its
ends from the hourly rollups, and the ragged seconds at its edges from the
records. A range is exact wherever records are still kept, and exact to the
hour beyond that. Days are UTC days.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypedDict

from sidelight_operator.usage.dimensions import DIMENSIONS, NUSD_PER_USD, VERDICTS

DAY_S = 86_400
HOUR_S = 3_600
GUARDRAIL_VALUES: tuple[str, ...] = (*VERDICTS, "none")
TOP_BY_COST_SHARE = 0.1


class SumsJson(TypedDict):
    """Requests, errors, tokens and cost (US dollars) over some records."""

    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class GroupJson(SumsJson):
    """One value of the grouping dimension, with one `SumsJson` per day of the range."""

    key: str
    trend: list[SumsJson]


class CostReport(TypedDict):
    """`GET /api/v1/usage/cost`."""

    by: str
    since: str
    until: str
    days: list[str]
    total: SumsJson
    groups: list[GroupJson]


class TopRequest(TypedDict):
    """One request of `GET /api/v1/usage/top`."""

    id: str
    time: str
    namespace: str
    team: str
    application: str
    environment: str
    requested_model: str
    served_model: str
    backend: str
    route: str
    guardrail: str
    fallback: bool
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: float
    status: int
    error_type: str
    trace_id: str


class TopReport(TypedDict):
    """`GET /api/v1/usage/top`."""

    since: str
    until: str
    requests: list[TopRequest]


class VerdictRate(TypedDict):
    """How many requests got a guardrail verdict, and their share."""

    requests: int
    rate: float


class RatesReport(TypedDict):
    """`GET /api/v1/usage/rates`."""

    since: str
    until: str
    requests: int
    errors: int
    error_rate: float
    fallbacks: int
    fallback_rate: float
    guardrails: dict[str, VerdictRate]


class QueryError(ValueError):
    """A query the store cannot answer; `parameter` names the culprit."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(slots=True)
class Sums:
    """Requests, errors, tokens and cost summed over some records."""

    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_nusd: int = 0

    def add(self, row: tuple[int, int, int, int, int]) -> None:
        """Add one (requests, errors, input, output, cost_nusd) row."""
        self.requests += row[0]
        self.errors += row[1]
        self.input_tokens += row[2]
        self.output_tokens += row[3]
        self.cost_nusd += row[4]

    def to_json(self) -> SumsJson:
        """The JSON shape of the API, cost in US dollars."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_nusd / NUSD_PER_USD,
        }


@dataclass(slots=True)
class Group:
    """One value of the grouping dimension: its totals and one `Sums` per day."""

    key: str
    total: Sums = field(default_factory=Sums)
    days: dict[int, Sums] = field(default_factory=dict)


def day_label(day: int) -> str:
    """`YYYY-MM-DD` of a UTC day number (days since the epoch)."""
    return datetime.fromtimestamp(day * DAY_S, UTC).strftime("%Y-%m-%d")


def rfc3339(ts: float) -> str:
    """A time as RFC 3339 in UTC, with milliseconds."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _check_range(since: float, until: float) -> None:
    if not since < until:
        raise QueryError("until", "until must be later than since")


_UNIT = {"daily": "day", "hourly": "hour", "records": "ts"}
_DAY = {"daily": "day", "hourly": "hour / 24", "records": f"CAST(ts / {DAY_S} AS INTEGER)"}
_COUNTS = {
    "daily": "requests, errors",
    "hourly": "requests, errors",
    "records": "1 AS requests, error AS errors",
}
_TOKENS_AND_COST = "input_tokens, output_tokens, cost_nusd"


def pieces(since: float, until: float) -> list[tuple[str, float, float]]:
    """(table, start, end) pieces covering [since, until) in the table's unit."""
    first_hour, end_hour = math.ceil(since / HOUR_S), math.floor(until / HOUR_S)
    if first_hour >= end_hour:
        return [("records", since, until)]
    found = [("records", since, first_hour * HOUR_S), ("records", end_hour * HOUR_S, until)]
    first_day, end_day = math.ceil(first_hour / 24), math.floor(end_hour / 24)
    if first_day >= end_day:
        found.append(("hourly", first_hour, end_hour))
    else:
        found += [
            ("hourly", first_hour, first_day * 24),
            ("hourly", end_day * 24, end_hour),
            ("daily", first_day, end_day),
        ]
    return [(table, start, end) for table, start, end in found if start < end]


def _union(columns: Callable[[str], str], since: float, until: float) -> tuple[str, list[float]]:
    """A UNION ALL of `SELECT columns(table)` over the pieces of the range."""
    selects: list[str] = []
    params: list[float] = []
    for table, start, end in pieces(since, until):
        unit = _UNIT[table]
        selects.append(f"SELECT {columns(table)} FROM {table} WHERE {unit} >= ? AND {unit} < ?")
        params += [start, end]
    return " UNION ALL ".join(selects), params


def _key(dimension: str, value: object) -> str:
    if dimension == "fallback":
        return "true" if value else "false"
    return str(value)


def cost_by(conn: sqlite3.Connection, by: str, since: float, until: float) -> CostReport:
    """Totals per value of `by` and per UTC day, most expensive group first."""
    if by not in DIMENSIONS:
        raise QueryError("by", f"unknown dimension {by!r}; one of {', '.join(DIMENSIONS)}")
    _check_range(since, until)
    sql, params = _union(
        lambda table: f"{by} AS k, {_DAY[table]} AS day, {_COUNTS[table]}, {_TOKENS_AND_COST}",
        since,
        until,
    )
    query = (
        f"SELECT k, day, SUM(requests), SUM(errors), SUM(input_tokens), SUM(output_tokens),"
        f" SUM(cost_nusd) FROM ({sql}) GROUP BY k, day"
    )
    groups: dict[str, Group] = {}
    total = Sums()
    for value, day, *sums in conn.execute(query, params):
        key = _key(by, value)
        group = groups.setdefault(key, Group(key))
        row = (sums[0], sums[1], sums[2], sums[3], sums[4])
        group.total.add(row)
        group.days.setdefault(day, Sums()).add(row)
        total.add(row)
    days = list(range(math.floor(since / DAY_S), math.ceil(until / DAY_S)))
    ordered = sorted(groups.values(), key=lambda g: (-g.total.cost_nusd, g.key))
    return {
        "by": by,
        "since": rfc3339(since),
        "until": rfc3339(until),
        "days": [day_label(day) for day in days],
        "total": total.to_json(),
        "groups": [
            GroupJson(
                key=group.key,
                **group.total.to_json(),
                trend=[group.days.get(day, Sums()).to_json() for day in days],
            )
            for group in ordered
        ],
    }


_TOP_COLUMNS = (
    "id, ts, namespace, team, application, environment, requested_model, served_model,"
    " backend, route, guardrail, fallback, input_tokens, output_tokens, cost_nusd,"
    " latency_ms, status, error_type, trace_id"
)


def _top_index(conn: sqlite3.Connection, since: float, until: float) -> str:
    """The index `top` walks: by cost when the range holds a good share of the records.

    Walking the cost index from the top reads about limit/share rows; walking
    the time range reads every row in it. SQLite's planner (without STAT4)
    cannot tell the two apart: over 1M rows it took 0.7 s for a 30-day top
    (bench/usage_store_bench.py). The share is estimated from the time span.
    """
    first, last = conn.execute(
        "SELECT (SELECT MIN(ts) FROM records), (SELECT MAX(ts) FROM records)"
    ).fetchone()
    if first is None or last <= first:
        return "records_ts"
    overlap = max(0.0, min(until, last) - max(since, first))
    return "records_cost" if overlap / (last - first) >= TOP_BY_COST_SHARE else "records_ts"


def top(conn: sqlite3.Connection, limit: int, since: float, until: float) -> TopReport:
    """The `limit` most expensive requests in the range that records still hold."""
    if not 1 <= limit <= 1000:
        raise QueryError("limit", "limit must be between 1 and 1000")
    _check_range(since, until)
    cursor = conn.cursor()
    cursor.row_factory = sqlite3.Row
    cursor.execute(
        f"SELECT {_TOP_COLUMNS} FROM records INDEXED BY {_top_index(conn, since, until)}"
        " WHERE ts >= ? AND ts < ? ORDER BY cost_nusd DESC, ts DESC LIMIT ?",
        (since, until, limit),
    )
    requests = [
        TopRequest(
            id=row["id"],
            time=rfc3339(row["ts"]),
            namespace=row["namespace"],
            team=row["team"],
            application=row["application"],
            environment=row["environment"],
            requested_model=row["requested_model"],
            served_model=row["served_model"],
            backend=row["backend"],
            route=row["route"],
            guardrail=row["guardrail"],
            fallback=bool(row["fallback"]),
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cost_usd=row["cost_nusd"] / NUSD_PER_USD,
            latency_ms=row["latency_ms"],
            status=row["status"],
            error_type=row["error_type"],
            trace_id=row["trace_id"],
        )
        for row in cursor
    ]
    return TopReport(since=rfc3339(since), until=rfc3339(until), requests=requests)


def _rate(count: int, requests: int) -> float:
    return count / requests if requests else 0.0


def rates(conn: sqlite3.Connection, since: float, until: float) -> RatesReport:
    """Error, fallback and guardrail-verdict rates over the range."""
    _check_range(since, until)
    sql, params = _union(lambda table: f"fallback, guardrail, {_COUNTS[table]}", since, until)
    query = f"SELECT fallback, guardrail, SUM(requests), SUM(errors) FROM ({sql}) GROUP BY 1, 2"
    requests = errors = fallbacks = 0
    verdicts = dict.fromkeys(GUARDRAIL_VALUES, 0)
    for fallback, guardrail, count, errored in conn.execute(query, params):
        requests += count
        errors += errored
        fallbacks += count if fallback else 0
        verdicts[guardrail] = verdicts.get(guardrail, 0) + count
    return RatesReport(
        since=rfc3339(since),
        until=rfc3339(until),
        requests=requests,
        errors=errors,
        error_rate=_rate(errors, requests),
        fallbacks=fallbacks,
        fallback_rate=_rate(fallbacks, requests),
        guardrails={
            verdict: VerdictRate(requests=count, rate=_rate(count, requests))
            for verdict, count in verdicts.items()
        },
    )
